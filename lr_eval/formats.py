"""Answer formats: each judge template declares once what a valid answer looks like.

One `AnswerFormat` gives both sides of a verdict, so they cannot drift apart:
- the grammar a backend can enforce: a Lark grammar for llguidance (in-process transformers and the
  embedded model), a regular expression for vLLM and OpenAI-compatible servers (guided regex), or a
  JSON schema for servers that only take `response_format`;
- the parser that reads the verdict (`AnswerFormat.parse`), which every answer goes through, constrained
  or not, after `lr_eval.trust.examine`; every parser reads its verdict among the tokens of
  `lr_eval.trust.tokens`, the one grammar of bracketed verdicts.

Shape of every format: an optional free rationale (no square brackets, so the only bracketed tokens of a
constrained answer are its verdict; one paragraph where the format says so), then the verdict part. Free
text is bounded: in tokens for llguidance (`[max_tokens=N]` rules), in characters for the regex and the
schema. The bounds are computed from the request's max_tokens, leaving room for the verdict and the
end-of-sequence token, so a constrained answer always reaches its verdict within max_tokens.

Families declare their formats next to their parsers: LongReward's stages in `lr_eval.reward.scorer`
(`FORMATS`), judged LongBench, LongBench-Chat, MT-Bench and AlpacaEval in their task modules (`FORMAT`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .trust import tokens as _verdict_tokens
from .types import PermanentError

#: Free text: anything but square brackets (they are the verdict syntax).
_FREE = r"[^\[\]]"
_FREE_LINE = r"[^\[\]\n]"
_REGEX_META = set("\\.+*?()|[]{}^$#&-~")


def regex_escape(text: str) -> str:
    """Escape for the regex dialect servers accept (Rust regex, Python re, Go RE2 all take these escapes)."""
    return "".join("\\" + c if c in _REGEX_META else ("\\n" if c == "\n" else c) for c in text)


def _cost(text: str) -> int:
    """Worst-case tokens of a literal: one per UTF-8 byte (no tokenizer uses more)."""
    return len(text.encode("utf-8"))


@dataclass(frozen=True)
class Part:
    """A node of an answer grammar: a literal, a choice, a sequence, a repetition or bounded free text."""

    kind: str                                   # "lit", "alt", "seq", "rep", "free"
    text: str = ""                              # lit
    parts: tuple[Part, ...] = ()                # alt, seq, rep (one part)
    lo: int = 0                                 # rep
    hi: int = 0                                 # rep; free: max tokens
    line: bool = False                          # free: one line (no newline), at least one visible character

    def cost(self) -> int:
        """Worst-case tokens of this part."""
        if self.kind == "lit":
            return _cost(self.text)
        if self.kind == "alt":
            return max(p.cost() for p in self.parts)
        if self.kind == "seq":
            return sum(p.cost() for p in self.parts)
        if self.kind == "rep":
            return self.hi * self.parts[0].cost()
        return self.hi

    def regex(self) -> str:
        if self.kind == "lit":
            return regex_escape(self.text)
        if self.kind == "alt":
            return "(?:" + "|".join(p.regex() for p in self.parts) + ")"
        if self.kind == "seq":
            return "".join(p.regex() for p in self.parts)
        if self.kind == "rep":
            return f"(?:{self.parts[0].regex()}){{{self.lo},{self.hi}}}"
        if self.line:  # one visible character first, then the rest of the line (characters <= tokens)
            return rf"[^\[\]\n\s]{_FREE_LINE}{{0,{max(0, self.hi - 1)}}}"
        return f"{_FREE}{{0,{self.hi}}}"

    def lark(self, rules: list[str]) -> str:
        """This part as a Lark expression; bounded free text becomes a rule of its own in `rules`."""
        if self.kind == "lit":
            return json.dumps(self.text)
        if self.kind == "alt":
            return "(" + " | ".join(p.lark(rules) for p in self.parts) + ")"
        if self.kind == "seq":
            return "(" + " ".join(p.lark(rules) for p in self.parts) + ")"
        if self.kind == "rep":
            return f"({self.parts[0].lark(rules)}){{{self.lo},{self.hi}}}"
        name = f"free{len(rules)}"
        body = r"/[^\[\]\n\s][^\[\]\n]*/" if self.line else r"/[^\[\]]*/"
        rules.append(f"{name}[max_tokens={self.hi}]: {body}")
        return name


def lit(text: str) -> Part:
    return Part("lit", text=text)


def alt(*parts: Part) -> Part:
    return Part("alt", parts=parts)


def seq(*parts: Part) -> Part:
    return Part("seq", parts=parts)


def rep(part: Part, lo: int, hi: int) -> Part:
    return Part("rep", parts=(part,), lo=lo, hi=hi)


def free(max_tokens: int, line: bool = False) -> Part:
    return Part("free", hi=max_tokens, line=line)


class FormatTooLarge(PermanentError, ValueError):
    """max_tokens leaves no room for the verdict of a format (that request fails; it is never sent)."""


@dataclass(frozen=True)
class AnswerFormat:
    """What a valid answer to one template looks like: grammar and parser from one declaration.

    `verdict(budget)` returns the verdict part, given the tokens its own free text (list items) may use;
    `rationale` says whether free text comes first; `ratings` lists the valid ratings of a 1-N rating
    format (the candidates of `--score-from logprobs`), empty for other formats.
    """

    name: str
    verdict: Callable[[int], Part] = field(compare=False)
    parse: Callable[[str | None], Any] = field(compare=False)
    rationale: bool = True
    ratings: tuple[int, ...] = ()
    version: str = "1"
    #: Share of the budget that free text in the verdict (list items) may take, the rest is the rationale's.
    verdict_share: float = 0.0
    #: The rationale is at most one paragraph (no line break) and a line break ends it, as in the examples
    #: of the statement-list prompt ("Analysis: ..." on one line, the list from the next). A small judge
    #: that would ramble to the bound reaches its verdict after one finished thought (README).
    one_paragraph: bool = False
    #: The lowest verdict (a rating scale's bottom, "not supported"): what a tampered verdict scores.
    minimum: float | None = None

    def grammar(self, max_tokens: int) -> Part:
        """The whole answer as one grammar that fits in `max_tokens` generated tokens (EOS included)."""
        if not self.rationale:  # the verdict alone: complete when the length limit ends it, EOS or not
            tail = self.verdict(0)
            if tail.cost() > max_tokens:
                raise FormatTooLarge(f"{self.name}: max_tokens {max_tokens} < {tail.cost()} for the verdict")
            return tail
        room, tail = self._split(max_tokens)
        if self.one_paragraph:  # empty, or one paragraph and its line break
            return seq(rep(seq(free(room, line=True), lit("\n")), 0, 1), tail)
        return seq(free(room), tail)

    def _split(self, max_tokens: int) -> tuple[int, Part]:
        """(tokens the rationale's text may take, the verdict part) of a format with a rationale."""
        budget = max_tokens - 1  # the end-of-sequence token counts as a generated token
        tail = self.verdict(max(0, math.floor(budget * self.verdict_share)))
        line_break = int(self.one_paragraph)  # the token that ends a one-paragraph rationale
        room = budget - tail.cost() - line_break
        if room < line_break:  # a one-paragraph rationale, when written, holds at least one character
            raise FormatTooLarge(f"{self.name}: max_tokens {max_tokens} leaves no room for the verdict "
                                 f"({tail.cost()} tokens at worst)")
        return room, tail

    def lark(self, max_tokens: int) -> str:
        """llguidance Lark grammar: free text bounded in tokens."""
        rules: list[str] = []
        start = self.grammar(max_tokens).lark(rules)
        return "\n".join([f"start: {start}", *rules])

    def regex(self, max_tokens: int) -> str:
        """Regular expression of the whole answer: free text bounded in characters, as many as tokens (a token
        spells at least one character, so the bound holds in tokens too for ASCII text)."""
        return self.grammar(max_tokens).regex()

    def json_schema(self, max_tokens: int) -> dict[str, Any]:
        """A JSON-schema form for servers that only take `response_format`: {"analysis", "verdict"}.

        `from_json` turns such an answer back into the text the parser reads.
        """
        props: dict[str, Any] = {}
        if self.rationale:
            room, tail = self._split(max_tokens)
            props["analysis"] = {"type": "string", "pattern": f"^{_FREE_LINE if self.one_paragraph else _FREE}*$",
                                 "maxLength": room}
        else:
            tail = self.grammar(max_tokens)
        props["verdict"] = {"type": "string", "pattern": f"^{tail.regex()}$"}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}

    def key(self, form: str, max_tokens: int) -> str:
        """Content address of the constraint as sent in `form` (enters the cache key)."""
        try:
            text = self.lark(max_tokens) if form == "llguidance" else self.regex(max_tokens)
        except FormatTooLarge as e:  # keyed all the same: the backend turns it into a failed call
            text = str(e)
        return f"{self.name}@{self.version}:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def from_json(content: str) -> str:
    """The text of a JSON-schema answer ({"analysis", "verdict"}): analysis, newline, verdict.

    Anything that is not such an object is returned unchanged (the parser then reads it as text).
    """
    try:
        obj = json.loads(content)
    except ValueError:
        return content
    if not isinstance(obj, dict) or not isinstance(obj.get("verdict"), str):
        return content
    analysis = obj.get("analysis")
    return (f"{analysis}\n" if isinstance(analysis, str) and analysis else "") + str(obj["verdict"])


# ------------------------------------------------------------------------------------------------------
# the kinds of verdict our templates use
# ------------------------------------------------------------------------------------------------------

def rating_format(name: str, lo: int, hi: int, parse: Callable[[str | None], Any],
                  version: str = "1") -> AnswerFormat:
    """Free rationale, then `[[r]]` with an integer r in [lo, hi]."""
    numbers = tuple(range(lo, hi + 1))
    tail = seq(lit("[["), alt(*(lit(str(n)) for n in numbers)), lit("]]"))
    return AnswerFormat(name, lambda _budget: tail, parse, ratings=numbers, version=version, minimum=float(lo))


def label_format(name: str, labels: Sequence[str], parse: Callable[[str | None], Any],
                 version: str = "1", minimum: float | None = None) -> AnswerFormat:
    """Free rationale, then one `[[label]]` (`minimum`: the value of the lowest label)."""
    tail = seq(lit("[["), alt(*(lit(x) for x in labels)), lit("]]"))
    return AnswerFormat(name, lambda _budget: tail, parse, version=version, minimum=minimum)


def label_lines_format(name: str, ids: Sequence[str], labels: Sequence[str], parse: Callable[[str | None], Any],
                       header: str = "Verdicts:\n", version: str = "1", minimum: float | None = None) -> AnswerFormat:
    """Free analysis, then `header` and one `id: [[label]]` line per id, in order."""
    choice = alt(*(lit(x) for x in labels))
    lines = [seq(lit(("\n" if n else "") + f"{i}: [["), choice, lit("]]")) for n, i in enumerate(ids)]
    tail = seq(lit(header), *lines)
    return AnswerFormat(f"{name}[{len(ids)}]", lambda _budget: tail, parse, version=version, minimum=minimum)


def item_block_format(name: str, start: str, none: str | None, parse: Callable[[str | None], Any],
                      end: str = "END", item_tokens: int = 40, max_items: int = 32, version: str = "1",
                      share: float = 0.75, one_paragraph: bool = False) -> AnswerFormat:
    """Free rationale, then `[[start]]`, 1..K lines `- item`, `[[end]]`; or `[[none]]`.

    With `none=None` there is no separate marker: "none" is the empty list (`[[start]]` then `[[end]]`), so
    the verdict has one way in. K is as many items of up to `item_tokens` tokens as `share` of the budget
    holds (at most `max_items`).
    """
    def verdict(budget: int) -> Part:
        head, close = lit(f"[[{start}]]\n"), lit(f"[[{end}]]")
        room = budget - head.cost() - close.cost()
        size = min(item_tokens, room - 3)  # a small budget still holds one shorter item
        if size < 4:
            raise FormatTooLarge(f"{name}: a budget of {budget} tokens holds no list item")
        item = seq(lit("- "), free(size, line=True), lit("\n"))
        most = min(max_items, room // item.cost())
        if none is None:
            return seq(head, rep(item, 0, most), close)
        return alt(seq(head, rep(item, 1, most), close), lit(f"[[{none}]]"))

    return AnswerFormat(name, verdict, parse, version=version, verdict_share=share, one_paragraph=one_paragraph)


def choice_format(name: str, options: Sequence[str], parse: Callable[[str | None], Any],
                  version: str = "1") -> AnswerFormat:
    """Exactly one of `options`, nothing else (AlpacaEval's single-token preference)."""
    tail = alt(*(lit(x) for x in options))
    return AnswerFormat(name, lambda _budget: tail, parse, rationale=False, version=version)


# ------------------------------------------------------------------------------------------------------
# scores from probabilities (G-Eval)
# ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RatingDistribution:
    """The judge's probabilities over the valid ratings at the verdict position (renormalised)."""

    probs: Mapping[int, float]

    @property
    def mean(self) -> float:
        """The probability-weighted mean rating (the G-Eval estimate)."""
        return sum(r * p for r, p in self.probs.items())

    @property
    def argmax(self) -> int:
        return max(self.probs, key=lambda r: (self.probs[r], -r))


def rating_distribution(logprobs: Mapping[str, float], ratings: Sequence[int]) -> RatingDistribution | None:
    """Renormalise {rating text: log-probability} over the valid `ratings`; None when none of them is there."""
    valid = {int(k.strip()): v for k, v in logprobs.items() if k.strip().isdigit() and int(k.strip()) in ratings}
    if not valid:
        return None
    top = max(valid.values())
    weights = {r: math.exp(v - top) for r, v in valid.items()}
    total = sum(weights.values())
    return RatingDistribution({r: w / total for r, w in sorted(weights.items())})


def verdict_logprobs_from_steps(tokens: Sequence[str], steps: Sequence[Mapping[str, float]],
                                ratings: Sequence[int]) -> dict[str, float] | None:
    """{rating: log-probability} at the verdict position of a generated answer, from per-token alternatives.

    `tokens` are the generated tokens and `steps[i]` the top alternatives at position i (a server's
    top_logprobs). The verdict position is the first token with a digit after the opening of the last
    `[[...]]` token (`lr_eval.trust.tokens`). Ratings that
    are one token there are read directly. A rating the judge spelled over two tokens (a "10" written "1",
    "0") is only known along the generated path: its first token's probability times the second's; the
    one-token reading of that first token ("1") then takes the probability of a closing bracket after it.
    """
    text = "".join(tokens)
    verdicts = [t for t in _verdict_tokens(text) if t.double]
    at = verdicts[-1].start if verdicts else -1
    if at < 0 or len(steps) < len(tokens):
        return None
    pos, i = 0, 0
    while i < len(tokens) and pos + len(tokens[i]) <= at + 2 and not any(c.isdigit() for c in tokens[i]):
        pos += len(tokens[i])
        i += 1
    if i >= len(tokens) or not any(c.isdigit() for c in tokens[i]):
        return None
    names = {str(r) for r in ratings}

    def body(tok: str) -> str:
        return tok.strip().strip("[]").strip()

    out: dict[str, float] = {}
    for tok, lp in steps[i].items():
        if body(tok) in names:
            out[body(tok)] = max(out.get(body(tok), -math.inf), lp)
    first = body(tokens[i])
    if i + 1 < len(tokens) and body(tokens[i + 1]).isdigit() and first + body(tokens[i + 1]) in names:
        lp_first = steps[i].get(tokens[i])
        if lp_first is not None:
            out[first + body(tokens[i + 1])] = lp_first + steps[i + 1].get(tokens[i + 1], 0.0)
            closing = [math.exp(lp) for t, lp in steps[i + 1].items() if t.strip().startswith("]")]
            if first in out:
                if closing:
                    out[first] = lp_first + math.log(sum(closing))
                else:
                    del out[first]
    return out or None
