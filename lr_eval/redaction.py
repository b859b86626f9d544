"""The one redaction point: no configured API key (nor the user-info of a URL) reaches a file, a log line or
the terminal.

Whoever learns a secret registers it (`build_client` registers the judge's key and its URL's user-info;
the embedder its key); `redact` removes every registered secret, any ``Bearer`` token and any URL user-info
from a text. The error classifier (`lr_eval.retry`), the file writer (`lr_eval.jsonl`) and the commands'
error lines run what they emit through it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "[redacted]"
_SECRETS: set[str] = set()
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{4,}")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@]+@")
#: Values too common to be secrets (and what local servers are given instead of a key).
_NOT_SECRETS = {"EMPTY", "none", "None", "null", "sk-"}


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` removes it from every text from now on."""
    if value and len(value) >= 8 and value not in _NOT_SECRETS:
        _SECRETS.add(value)


def register_url(url: str | None) -> None:
    """Register the user name and password of a URL's user-info (``http://user:KEY@host/v1``)."""
    if not url:
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    # Only the password: a user name ("user", "admin") is no secret, and replacing it in a written record's
    # JSON text would rename fields (a registered "user" turned "user_prompt" into "[redacted]_prompt").
    register_secret(parts.password)


def redact(text: str, generic: bool = True) -> str:
    """`text` with every registered secret replaced by ``[redacted]``; `generic` also any Bearer token and
    URL user-info (for error texts and log lines; records written to files keep their data and lose only
    the registered secrets)."""
    if not isinstance(text, str):
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    if generic:
        text = _BEARER.sub(lambda m: f"{m[1]} {MASK}", text)
        text = _USERINFO.sub(lambda m: f"{m[1]}{MASK}@", text)
    return text
