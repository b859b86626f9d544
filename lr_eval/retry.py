"""The one classifier of OpenAI-compatible endpoint errors, and the one backoff, for chat and embeddings.

Every failure of a request becomes one of three kinds (lr_eval.types): `JudgeFatalError` (nothing can
succeed: bad key, unknown model or route, a host that does not resolve), `PermanentError` (this request
cannot succeed: 400/422, e.g. a context too long) or `TransientError` (worth retrying: 429, 5xx, timeouts,
refused or broken connections, malformed bodies). Messages name the endpoint and the cause.
"""

from __future__ import annotations

import random
import socket
import time
from email.utils import parsedate_to_datetime
from typing import Any

from .redaction import redact
from .types import JudgeFatalError, PermanentError, TransientError


def retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After (or retry-after-ms) header, if the server sent one."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None


def backoff_delay(attempt: int, base: float, cap: float, server_wait: float | None = None) -> float:
    """Full-jitter exponential backoff after the `attempt`-th failure, never shorter than the server's wait."""
    delay = random.uniform(0, min(cap, base * 2 ** (attempt - 1)))
    return max(delay, server_wait or 0.0)


def server_message(e: Any) -> str:
    """The server's error message, wherever in the body it put it."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if body.get("message"):
            return str(body["message"])
    return str(getattr(e, "message", e))


def _root_causes(e: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: set[int] = set()
    x: BaseException | None = e
    while x is not None and id(x) not in seen and len(out) < 12:
        seen.add(id(x))
        out.append(x)
        x = x.__cause__ or x.__context__
    return out


#: Causes that mean the server (or something between) closed the connection: not a timeout, whatever the
#: HTTP layer wraps them in.
_DROPPED = ("ServerDisconnectedError", "RemoteProtocolError", "ClientPayloadError", "IncompleteRead",
            "ConnectionResetError", "BrokenPipeError", "ConnectionAbortedError")


def classify(e: Exception, endpoint: str | None, model: str, what: str = "judge",
             key_env: str = "LR_JUDGE_API_KEY", timeout: float | None = None) -> Exception:
    """The kind of an exception raised by the openai client (or by reading its answer), with a clear message
    in which no key appears (`lr_eval.redaction`).

    `what` is "judge" or "embedding"; `endpoint` the base URL (None: api.openai.com); `key_env` the
    variable the key was read from.
    """
    kind = _classify(e, endpoint, model, what, key_env, timeout)
    if kind is e:
        return e
    kind.args = tuple(redact(a) if isinstance(a, str) else a for a in kind.args)
    return kind


def _classify(e: Exception, endpoint: str | None, model: str, what: str, key_env: str,
              timeout: float | None) -> Exception:
    import openai

    where = endpoint or "https://api.openai.com/v1"
    if isinstance(e, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return JudgeFatalError(f"{what} endpoint {where} refused the credentials (HTTP {e.status_code}): check "
                               f"the API key in ${key_env}. Server said: {server_message(e)}")
    if isinstance(e, openai.NotFoundError):
        return JudgeFatalError(f"{what} endpoint {where} has no model {model!r} or no such route "
                               f"(HTTP 404): {server_message(e)}")
    if isinstance(e, (openai.BadRequestError, openai.UnprocessableEntityError)):
        return PermanentError(f"HTTP {e.status_code}: {server_message(e)}")
    if isinstance(e, openai.RateLimitError):
        return TransientError(f"HTTP 429: {server_message(e)}", retry_after(e.response.headers))
    if isinstance(e, openai.APIStatusError):
        if e.status_code >= 500 or e.status_code in (408, 409):
            return TransientError(f"HTTP {e.status_code}", retry_after(e.response.headers))
        return PermanentError(f"HTTP {e.status_code}: {server_message(e)}")
    if isinstance(e, openai.APIConnectionError):  # timeouts included: look for the real cause first
        causes = _root_causes(e)
        if any(isinstance(c, socket.gaierror) for c in causes):
            return JudgeFatalError(f"{what} endpoint {where}: the host name does not resolve (DNS failure); "
                                   "check the base URL")
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return TransientError(f"{what} endpoint {where} refused the connection (is the server running, "
                                  "and is the port right?)", refused=True)
        dropped = next((c for c in causes if type(c).__name__ in _DROPPED), None)
        if dropped is not None:
            return TransientError(f"{what} endpoint {where} closed the connection before answering "
                                  f"({type(dropped).__name__}: {dropped})")
        if isinstance(e, openai.APITimeoutError):
            return TransientError(f"no answer from {where} within {timeout:g} s" if timeout else
                                  f"request to {where} timed out")
        return TransientError(f"connection error with {where}: {e}")
    if isinstance(e, (openai.APIResponseValidationError, ValueError, TypeError, KeyError, IndexError,
                      AttributeError)):
        return TransientError(f"malformed response body from {where}: {type(e).__name__}: {e}")
    return e
