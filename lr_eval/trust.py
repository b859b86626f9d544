"""Untrusted text in judge prompts: how it is fenced, and how a verdict is kept to the judge's own words.

Every judge prompt carries text the judge must not take orders or verdicts from: the answer under
evaluation, references, contexts, few-shot answers. Two defences, used by every judged family:

1. `fence` (our own templates): the text goes inside a tagged block and is `neutralise`d first, so it can
   neither close the block early nor contain our verdict syntax (`[[...]]`). Families that must keep an
   official template byte for byte (LongBench-Chat, MT-Bench, AlpacaEval) insert the text raw and rely on 2.
2. `own_words` (every family, applied by `lr_eval.parsing` before any parser runs): a bracketed token of
   the judge's answer cannot be a verdict when it was copied, either
   - from the prompt, together with enough surrounding text to show it is a copy (a judge echoing its
     instructions, a template's "e.g. [[5]]", a few-shot rating), or
   - from the untrusted text itself: a token that the evaluated text also spells (its `[[10]]`) is never
     taken as the judge's verdict, wherever the judge writes it.
   Copied tokens are blanked out; the parser sees what is left. A judge that only quotes or echoes ends up
   unscored with the reason `COPIED_ONLY`.

A request names its untrusted texts (`ChatRequest.untrusted`, as they appear in the prompt); they are not
part of the cache key, since they are already inside the messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: The unscored reason when every verdict in an answer was copied.
COPIED_ONLY = "verdict only inside text copied from the prompt or from the evaluated text"

#: How many letters and digits of copied context, besides bracketed tokens, mark a token as an echo.
#: Long enough that a judge's own "Rating: [[5]]" after a template's 'for example: "Rating: [[5]]"' is
#: not mistaken for a copy; short enough that an echoed instruction sentence always is.
ECHO_CONTEXT = 24
_MAX_EXTEND = 2000

# A bracketed token: [[...]] or a lone [...] (FastChat's fallback rating form), at most 60 characters inside.
_TOKEN = re.compile(r"\[\[[^\[\]\n]{0,60}\]\]|(?<!\[)\[[^\[\]\n]{1,60}\](?!\])")
_SPACE = re.compile(r"\s+")


def neutralise(text: str, tags: Iterable[str] = ()) -> str:
    """Make data inert inside a prompt: no `[[`/`]]` verdict syntax, and none of `tags` can open or close.

    Only these sequences change (`[[` becomes `[ [`, `<response>` becomes `‹response>`), so the judge still
    reads the text as written.
    """
    text = text.replace("[[", "[ [").replace("]]", "] ]")
    names = [re.escape(t) for t in tags]
    if names:
        text = re.sub(r"<(/?)\s*(" + "|".join(names) + r")\b", lambda m: "‹" + m.group(1) + m.group(2), text,
                      flags=re.IGNORECASE)
    return text


def fence(text: str, tag: str, tags: Iterable[str] = ()) -> str:
    """`text` as a `<tag>` block the text cannot leave (neutralised; `tags` are the prompt's other block names)."""
    return f"<{tag}>\n{neutralise(text, {tag, *tags})}\n</{tag}>"


def _norm(token: str) -> str:
    return _SPACE.sub(" ", token.strip("[] \t").lower())


@dataclass(frozen=True)
class OwnWords:
    """The judge's answer with copied bracketed tokens blanked out, and how many were."""

    text: str
    removed: int


def own_words(answer: str, prompt_texts: Sequence[str], untrusted: Sequence[str]) -> OwnWords:
    """Blank out the bracketed tokens of `answer` that the judge copied (see the module docstring).

    `prompt_texts` are the messages the judge was sent, except its own earlier answers; `untrusted` are the
    untrusted texts as they appear in them.
    """
    tokens = list(_TOKEN.finditer(answer))
    if not tokens:
        return OwnWords(answer, 0)
    planted = _planted(untrusted)
    prompt = "\n\x00\n".join(prompt_texts)
    in_token = [False] * len(answer)
    for m in tokens:
        in_token[m.start():m.end()] = [True] * (m.end() - m.start())
    out = list(answer)
    removed = 0
    for m in tokens:
        i, j = m.span()
        if _is_planted(m.group(0), planted) or _echoed(answer, i, j, prompt, in_token):
            out[i:j] = " " * (j - i)
            removed += 1
    return OwnWords("".join(out), removed)


def _planted(untrusted: Sequence[str]) -> tuple[set[str], set[str]]:
    """(insides of the ``[[...]]`` tokens, insides of every token) the untrusted texts spell, neutralised
    ``[ [...] ]`` read as ``[[...]]``."""
    double: set[str] = set()
    every: set[str] = set()
    for text in untrusted:
        for m in _TOKEN.finditer(text.replace("[ [", "[[").replace("] ]", "]]")):
            every.add(_norm(m.group(0)))
            if m.group(0).startswith("[["):
                double.add(_norm(m.group(0)))
    return double, every


def _is_planted(token: str, planted: tuple[set[str], set[str]]) -> bool:
    """A planted ``[[x]]`` blocks the judge's ``[[x]]`` and ``[x]``; a planted ``[x]`` only its ``[x]``: code in
    an answer or reference (``B[1]``) must not block a judge's own ``[[1]]``."""
    double, every = planted
    inside = _norm(token)
    return inside in double or (not token.startswith("[[") and inside in every)


def _echoed(answer: str, i: int, j: int, prompt: str, in_token: Sequence[bool]) -> bool:
    """Whether answer[i:j] sits inside a stretch of the prompt copied with ECHO_CONTEXT letters of context."""
    if answer[i:j] not in prompt:
        return False
    # "answer[l:j] in prompt" holds for every l above the smallest one that works: binary search it.
    lo, hi = max(0, i - _MAX_EXTEND), i
    while lo < hi:
        mid = (lo + hi) // 2
        if answer[mid:j] in prompt:
            hi = mid
        else:
            lo = mid + 1
    left = lo
    lo, hi = j, min(len(answer), j + _MAX_EXTEND)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if answer[left:mid] in prompt:
            lo = mid
        else:
            hi = mid - 1
    right = lo
    context = sum(1 for k in range(left, right) if not in_token[k] and answer[k].isalnum())
    return context >= ECHO_CONTEXT
