"""Untrusted text in judge prompts: one verdict grammar, fences, and whose a verdict is.

Every judge prompt carries text the judge must not take orders or verdicts from: the answer under
evaluation, references, contexts, few-shot answers. The rules, used by every judged family:

1. One grammar (`tokens`). A verdict is a bracketed token: ``[[...]]`` (the inside may hold newlines, a
   lone ``[`` and any length; it runs from the last ``[[`` before the first ``]]``) or, outside those, a lone
   ``[...]`` (FastChat's fallback). Full-width and similar brackets (``［［10］］``, ``【10】``) read as ASCII
   ones. Every parser finds its verdict among these tokens, and the copy rule below examines exactly these
   tokens, so nothing a parser can read as a verdict escapes the check.
2. Text is data (`fence`, `neutralise`, `neutralise_markup`). Our own templates put each text in a tagged
   block, neutralised: it can neither close the block nor spell a verdict token. Every family, official
   templates included, neutralises chat markup (``<|im_start|>``, ``[INST]``, ``<start_of_turn>``...) in the
   texts before a template is filled or split into messages, so a text never creates a message or a role.
3. Whose verdict (`examine`). A token of the judge's answer is a copy when it sits in a stretch copied from
   the prompt with ECHO_CONTEXT letters of context, or in a stretch copied from an evaluated text that has
   that much context or reaches the text's start or end (a quote of the whole answer, of its last line).
   Copies are blanked out; parsers read what is left, the judge's own words. A token that the evaluated text
   spells but that the judge did not copy (its own ``Rating: [[2]]`` after an answer listing ``[[1]] [[2]]``)
   is the judge's own: where our templates fence the text the prompt never contains it, and where an
   official template keeps the text raw, copying is shown by context, not by the answer spelling it anywhere.
4. No veto. `lr_eval.parsing` turns the examination into a status: an answer without a verdict of the
   judge's own that copied verdict syntax (``[[...]]``) or a verdict from the evaluated text, an answer that is
   the evaluated text, or a prompt whose fences the evaluated text broke (it contains the template's own
   separators), is *tampered*, scored as the scale's minimum; one whose only verdict was copied from the
   template is *unscored* (the judge's fault). Neither path lets the text raise a score or escape the mean.

A request names its untrusted texts as they appear in the prompt (`ChatRequest.untrusted`) and the texts
under evaluation as written (`ChatRequest.evaluated`); neither is part of the cache key.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: The unscored reason when every verdict in an answer was copied from the prompt (the template, a few-shot).
COPIED_ONLY = "verdict only inside text copied from the prompt"
#: The tampered reasons: the verdict could be the evaluated text's, or the text broke the prompt's fences.
COPIED_TEXT = "verdict only inside text copied from the evaluated text"
BROKEN_FENCE = "the evaluated text contains the prompt's own separators"

#: How many letters and digits of copied context, besides bracketed tokens, mark a token as an echo.
#: Long enough that a judge's own "Rating: [[5]]" after a template's 'for example: "Rating: [[5]]"' is
#: not mistaken for a copy; short enough that an echoed instruction sentence always is.
ECHO_CONTEXT = 24
_MAX_EXTEND = 2000

# Brackets that read as [ and ] (one character each, so positions are kept).
_OPEN, _CLOSE = "［【〔〖〘〚⟦⟬｢「", "］】〕〗〙〛⟧⟭｣」"
_BRACKETS = str.maketrans({**{c: "[" for c in _OPEN}, **{c: "]" for c in _CLOSE}})
_SINGLE = re.compile(r"\[([^\[\]]+)\]")
_SPACE = re.compile(r"\s+")

# Chat markup of the common chat templates: special tokens <|...|>, Llama [INST] / <<SYS>>, Gemma turns, <s>.
_MARKUP = re.compile(r"<\|[^|<>\n]{1,40}\|>|\[/?INST\]|<</?SYS>>|</?(?:start_of_turn|end_of_turn|s)>",
                     re.IGNORECASE)
# Lines of a template that delimit its parts: "[Assistant's answer ends]", "<|The Start of ...|>".
_SEPARATOR_LINE = re.compile(r"^[ \t]*(\[[^\[\]{}\n]{3,80}\]|<\|[^|{}\n]{3,80}\|>)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Token:
    """One bracketed token of a text: ``text[start:end]``; `double` for ``[[...]]``; `inside` as written."""

    start: int
    end: int
    double: bool
    inside: str

    @property
    def key(self) -> str:
        """The inside as compared: NFKC (full-width digits read as ASCII), lower case, spaces collapsed."""
        return _SPACE.sub(" ", unicodedata.normalize("NFKC", self.inside).strip(" \t\r\n[]")).lower()


def tokens(text: str | None) -> list[Token]:
    """Every bracketed token of `text`, in order: the one grammar of verdicts (module docstring, rule 1)."""
    if not text:
        return []
    t = text.translate(_BRACKETS)
    doubles: list[Token] = []
    pos = 0
    while (close := t.find("]]", pos)) >= 0:
        start = t.rfind("[[", pos, close + 1)
        if start < 0 or start + 2 > close:
            pos = close + 1
            continue
        doubles.append(Token(start, close + 2, True, text[start + 2:close]))
        pos = close + 2
    out = list(doubles)
    k = 0
    for m in _SINGLE.finditer(t):
        while k < len(doubles) and doubles[k].end <= m.start():
            k += 1
        if k < len(doubles) and doubles[k].start < m.end():
            continue  # part of a [[...]] token
        out.append(Token(m.start(), m.end(), False, text[m.start(1):m.end(1)]))
    return sorted(out, key=lambda x: x.start)


def neutralise(text: str, tags: Iterable[str] = ()) -> str:
    """Make data inert inside a prompt: no ``[[``/``]]`` (in any bracket form), no chat markup, and none of
    `tags` can open or close.

    Only these sequences change (``[[`` becomes ``[ [``, ``<response>`` becomes ``‹response>``, ``<|im_end|>``
    becomes ``‹|im_end|>``), so the judge still reads the text as written.
    """
    t = text.translate(_BRACKETS)
    out = []
    for i, c in enumerate(text):
        out.append(c)
        if i + 1 < len(t) and t[i] in "[]" and t[i + 1] == t[i]:
            out.append(" ")
    text = neutralise_markup("".join(out))
    names = [re.escape(x) for x in tags]
    if names:
        text = re.sub(r"<(/?)\s*(" + "|".join(names) + r")\b", lambda m: "‹" + m.group(1) + m.group(2), text,
                      flags=re.IGNORECASE)
    return text


def neutralise_markup(text: str) -> str:
    """Chat markup inside a text made inert (``<|im_start|>`` -> ``‹|im_start|>``, ``[INST]`` -> ``[ INST]``):
    applied to every untrusted text before a template is filled or split into messages, official templates
    included (no real instruction, answer or reference holds such markup, so their prompts are unchanged)."""
    def inert(m: re.Match[str]) -> str:
        s = m.group(0)
        return "‹" + s[1:] if s.startswith("<") else "[ " + s[1:]

    return _MARKUP.sub(inert, text)


def fence(text: str, tag: str, tags: Iterable[str] = ()) -> str:
    """`text` as a `<tag>` block the text cannot leave (neutralised; `tags` are the prompt's other block names)."""
    return f"<{tag}>\n{neutralise(text, {tag, *tags})}\n</{tag}>"


def template_separators(template: str) -> tuple[str, ...]:
    """The lines of an official template that delimit its parts ("[Assistant's answer ends]"): an evaluated
    text that spells one broke the prompt's fences."""
    return tuple(dict.fromkeys(m.group(1) for m in _SEPARATOR_LINE.finditer(template)))


@dataclass(frozen=True)
class Examined:
    """The judge's answer with its copied tokens blanked out (`text`: what parsers read), and what was copied."""

    text: str
    copied_prompt: int = 0       # tokens echoed from the prompt (its template, few-shots, references)
    copied_text: int = 0         # tokens copied from the evaluated text
    copied_doubles: int = 0      # of which [[...]] tokens: verdict syntax, whether a parser reads them or not
    broken_fence: str | None = None  # the separator the evaluated text spelled
    only_copy: bool = False      # the whole answer is an evaluated text, verbatim (no token needed)

    @property
    def removed(self) -> int:
        return self.copied_prompt + self.copied_text + int(self.only_copy)


def examine(answer: str, prompt_texts: Sequence[str], evaluated: Sequence[str] = (),
            separators: Sequence[str] = ()) -> Examined:
    """Whose each bracketed token of `answer` is (module docstring, rule 3).

    `prompt_texts` are the messages the judge was sent, except its own earlier answers; `evaluated` the texts
    under evaluation as written (before any fence); `separators` the template's own part delimiters.
    """
    broken = next((s for s in separators for e in evaluated if s in e), None)
    texts = [e.strip() for e in evaluated if e.strip()]
    if answer.strip() and answer.strip() in texts:
        copied = tokens(answer)
        return Examined(" " * len(answer), copied_text=len(copied), copied_doubles=sum(t.double for t in copied),
                        broken_fence=broken, only_copy=True)
    found = tokens(answer)
    if not found:
        return Examined(answer, broken_fence=broken)
    prompt = "\n\x00\n".join(prompt_texts)
    planted = {x.key for e in texts for x in tokens(e)}
    in_token = [False] * len(answer)
    for x in found:
        in_token[x.start:x.end] = [True] * (x.end - x.start)
    out = list(answer)
    by_prompt = by_text = doubles = 0
    for x in found:
        i, j = x.start, x.end
        if any(_copied(answer, i, j, e, in_token, whole=True) for e in texts) or (
                _copied(answer, i, j, prompt, in_token) and x.key in planted):
            by_text += 1
            doubles += x.double
        elif _copied(answer, i, j, prompt, in_token):
            by_prompt += 1
        else:
            continue
        out[i:j] = " " * (j - i)
    return Examined("".join(out), by_prompt, by_text, doubles, broken)


def _copied(answer: str, i: int, j: int, source: str, in_token: Sequence[bool], whole: bool = False) -> bool:
    """Whether answer[i:j] sits inside a stretch copied from `source` with ECHO_CONTEXT letters of context, or
    (`whole`) a stretch that reaches the start or the end of `source`."""
    if answer[i:j] not in source:
        return False
    # "answer[l:j] in source" holds for every l above the smallest one that works: binary search it.
    lo, hi = max(0, i - _MAX_EXTEND), i
    while lo < hi:
        mid = (lo + hi) // 2
        if answer[mid:j] in source:
            hi = mid
        else:
            lo = mid + 1
    left = lo
    lo, hi = j, min(len(answer), j + _MAX_EXTEND)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if answer[left:mid] in source:
            lo = mid
        else:
            hi = mid - 1
    stretch = answer[left:lo]
    if whole and (source.startswith(stretch.lstrip()) or source.endswith(stretch.rstrip())):
        return True
    context = sum(1 for k in range(left, lo) if not in_token[k] and answer[k].isalnum())
    return context >= ECHO_CONTEXT
