"""Parse policy shared by every judged metric.

A judge answer yields a verdict with a status (`lr_eval.records`): *scored* (the judge's own verdict),
*tampered* (the only verdict was copied from the evaluated text, or the text broke the prompt's fences:
the scale's minimum, cause ``evaluated_text``) or *unscored* with a reason (cause ``judge``); there is no
default score. Out-of-range scores are clamped and the clamp is counted. An unparseable answer may be
re-asked a bounded number of times (the re-ask is an ordinary, cached request); a tampered one never is.
Every parser finds its verdict among the tokens of `lr_eval.trust.tokens`, the grammar the copy rule checks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .formats import rating_distribution
from .judge import JudgeClient
from .records import JUDGE_CAUSE, SCORED, TAMPERED, TEXT_CAUSE, UNSCORED
from .trust import BROKEN_FENCE, COPIED_ONLY, COPIED_TEXT, Examined, examine, tokens
from .types import ChatRequest, ChatResult

_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_BRACKETED = re.compile(r"\s*(" + _NUMBER + r")\s*(?:/\s*\d+(?:\.\d+)?)?\s*")


@dataclass(frozen=True)
class Parsed:
    """A parsed verdict: `value` is None when unscored, and `reason` says why."""

    value: float | None
    reason: str | None = None
    clamped: bool = False
    raw: str = ""
    #: The answer was decoded under its template's grammar (lr_eval.formats); still parsed like any answer.
    constrained: bool = False
    #: With --score-from logprobs: `value` is the probability-weighted mean rating and this the likeliest one.
    argmax: float | None = None
    from_logprobs: bool = False
    #: The verdict could be the evaluated text's (`lr_eval.trust`): `value` is the scale's minimum when the
    #: format knows it (else None, and the family scores its minimum).
    tampered: bool = False

    @property
    def scored(self) -> bool:
        """The judge's own verdict (not tampered)."""
        return self.value is not None and not self.tampered

    @property
    def status(self) -> str:
        return TAMPERED if self.tampered else SCORED if self.value is not None else UNSCORED

    @property
    def cause(self) -> str | None:
        return TEXT_CAUSE if self.tampered else None if self.value is not None else JUDGE_CAUSE


def unscored(reason: str, raw: str = "") -> Parsed:
    return Parsed(value=None, reason=reason, raw=raw)


def tampered(reason: str, minimum: float | None, raw: str = "") -> Parsed:
    """A verdict the evaluated text could have supplied: the scale's `minimum`, flagged, never re-asked."""
    return Parsed(value=minimum, reason=reason, raw=raw, tampered=True)


def clamp(value: float, lo: float, hi: float, raw: str = "") -> Parsed:
    """Clamp into [lo, hi], marking the result when it had to move."""
    v = min(max(value, lo), hi)
    return Parsed(value=v, clamped=v != value, raw=raw)


def parse_bracket_score(text: str | None, lo: float, hi: float) -> Parsed:
    """The last `[[number]]` (also `[[7/10]]`) in the answer, clamped to [lo, hi]."""
    if text is None:
        return unscored("no answer")
    found = [m for t in tokens(text) if t.double and (m := _BRACKETED.fullmatch(t.inside))]
    if not found:
        return unscored("no [[score]] in the answer", text)
    return clamp(float(found[-1].group(1)), lo, hi, text)


Parser = Callable[[str | None], Parsed]

REASK_VERSION = "2"
# No example number here: a judge that echoes the re-ask back must not produce a score.
REASK_PROMPT = ("Your reply did not end with a verdict in the required format. "
                "Reply again with only the verdict, in double square brackets as the instructions say, "
                "and nothing else.")


@dataclass
class ParseStats:
    """Counters that reports print: scored, unscored by reason, clamped, re-asked."""

    scored: int = 0
    tampered: int = 0           # verdicts the evaluated text could have supplied (the scale's minimum)
    clamped: int = 0
    reasked: int = 0
    unscored: Counter[str] = field(default_factory=Counter)
    constrained: int = 0        # verdicts decoded under their grammar (scored or not)
    from_logprobs: int = 0      # scores read from the judge's probabilities

    def add(self, p: Parsed) -> None:
        self.constrained += int(p.constrained)
        if p.tampered:
            self.tampered += 1
        elif p.scored:
            self.scored += 1
            self.clamped += int(p.clamped)
            self.from_logprobs += int(p.from_logprobs)
        else:
            self.unscored[p.reason or "unknown"] += 1

    def to_dict(self) -> dict[str, object]:
        return {"scored": self.scored, "tampered": self.tampered, "unscored": sum(self.unscored.values()),
                "unscored_reasons": dict(self.unscored), "clamped": self.clamped, "reasked": self.reasked,
                "constrained": self.constrained, "from_logprobs": self.from_logprobs}


def own_answer(res: ChatResult, request: ChatRequest) -> Examined:
    """The judge's answer to `request` with every verdict it copied blanked out: the only text parsers read."""
    return examine(res.content or "", request.prompt_texts(), request.evaluated, request.separators)


def minimum_of(request: ChatRequest) -> float | None:
    """The lowest verdict of the request's answer format (None when the format does not say)."""
    fmt = request.answer_format
    return None if fmt is None else fmt.minimum


def judged(own: Examined, parsed: Parsed, full: Parsed, raw: str, minimum: float | None) -> Parsed:
    """The status of a verdict read from the judge's own words (`parsed`) and from its whole answer (`full`).

    Tampered: the evaluated text broke the prompt's fences; or the judge has no verdict of its own and copied
    from the evaluated text a verdict (`full` reads one), verdict syntax (a ``[[...]]`` token: a copied
    ``[[ [10]]`` must not veto the sample by being unreadable) or the whole text. Unscored with `COPIED_ONLY`:
    its only verdict was copied from the template. Else the parser's own verdict or reason.
    """
    if own.broken_fence:
        return tampered(f"{BROKEN_FENCE} ({own.broken_fence!r})", minimum, raw)
    if parsed.scored or not own.removed:
        return replace(parsed, raw=raw) if own.removed else parsed
    if own.only_copy or own.copied_doubles or (own.copied_text and full.scored):
        return tampered(COPIED_TEXT, minimum, raw)
    if full.scored:
        return replace(parsed, reason=COPIED_ONLY, raw=raw)
    return replace(parsed, raw=raw)


def result_to_parsed(res: ChatResult, parser: Parser, request: ChatRequest) -> Parsed:
    """Parse a judge result; a failed call is unscored with the call's error as reason.

    Only the judge's own words count (`lr_eval.trust.examine`): a verdict it copied from the prompt or from
    the evaluated text is blanked out first; an answer whose only verdicts were copied is tampered (copied
    from the evaluated text) or unscored with `COPIED_ONLY` (copied from the template).
    """
    if not res.ok:
        return unscored(f"judge call failed: {res.error}")
    own = own_answer(res, request)
    parsed = parser(own.text)
    full = parser(res.content) if own.removed and not parsed.scored else parsed  # what the copies would read as
    return verdict_mode(judged(own, parsed, full, res.content or "", minimum_of(request)), res, request)


def verdict_mode(parsed: Parsed, res: ChatResult, request: ChatRequest) -> Parsed:
    """Mark a verdict decoded under its grammar, and with --score-from logprobs read a rating's score from the
    judge's probabilities at the verdict position: the probability-weighted mean over the valid ratings
    (G-Eval), the likeliest rating beside it.

    Only a verdict the text parse already accepted (the judge's own words) is re-read; where the backend gave
    no probabilities over any valid rating, the text rating stays (`from_logprobs` False, counted).
    """
    fmt = request.answer_format
    parsed = replace(parsed, constrained=bool(request.structured and fmt is not None))
    if parsed.tampered:
        return parsed
    if request.score_from != "logprobs" or not parsed.scored or fmt is None or not fmt.ratings:
        return parsed
    dist = rating_distribution(res.verdict_logprobs or {}, fmt.ratings)
    if dist is None:
        return parsed
    return replace(parsed, value=dist.mean, argmax=float(dist.argmax), from_logprobs=True, clamped=False)


def reask_request(request: ChatRequest, answer: str, prompt: str, template_version: str) -> ChatRequest:
    """The same conversation continued: the judge's unparseable answer, then the re-ask message.

    The re-ask's own `template_version` keeps it from ever sharing a cache key with a first ask.
    """
    return replace(request, messages=request.messages + ({"role": "assistant", "content": answer},
                                                         {"role": "user", "content": prompt}),
                   template_version=template_version)


async def ask_and_parse(client: JudgeClient, request: ChatRequest, parser: Parser, reasks: int = 1,
                        stats: ParseStats | None = None, reask_prompt: str = REASK_PROMPT,
                        reask_tag: str = f"reask{REASK_VERSION}") -> tuple[Parsed, list[ChatResult]]:
    """Ask, parse, and if unparseable re-ask up to `reasks` times in the same conversation.

    A failed call is not re-asked (its error is the reason). Returns the final verdict and every
    judge result (for the audit trail and token counts).
    """
    request = client.complete(request)  # as keyed and sent: its structured form and score mode apply to the parse
    results = [await client.chat(request)]
    parsed = result_to_parsed(results[-1], parser, request)
    req = request
    for _ in range(reasks):
        if parsed.scored or parsed.tampered or not results[-1].ok:
            break
        req = reask_request(req, results[-1].content or "", reask_prompt,
                            f"{request.template_version}+{reask_tag}")
        if stats is not None:
            stats.reasked += 1
        client.expect_more(1)
        results.append(await client.chat(req))
        parsed = result_to_parsed(results[-1], parser, req)
    if stats is not None:
        stats.add(parsed)
    return parsed, results
