"""One reading of a yes/no setting given as text (environment variables, lm-eval metadata, TOML, flags)."""

from __future__ import annotations

from typing import Any

#: The spellings of "yes"; anything else (including False, None, "", "0", "no") means no.
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def truthy(value: Any) -> bool:
    """True for ``True`` and for the words of :data:`TRUE_WORDS` (any case, surrounding spaces ignored)."""
    if isinstance(value, bool):
        return value
    return value is not None and str(value).strip().lower() in TRUE_WORDS
