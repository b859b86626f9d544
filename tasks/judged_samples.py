"""The judged-samples engine: a task family's :class:`JudgeSpec` asks the judge about every sample in one
concurrent batch (cached, retried, budgeted; one progress bar) and turns the answers into one
:class:`~lr_eval.records.Verdict` per sample and a :class:`~lr_eval.records.JudgeReport`.

Used by the judge filters of the lm-eval tasks (:mod:`lr_eval.tasks.judge_filters`) and by ``lr-eval mtbench``.
Nothing here knows lm-eval. Nothing unscored ever becomes a default score.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from typing import Any

from lr_eval.judge import JudgeClient, gather_or_cancel
from lr_eval.parsing import Parsed, ParseStats, ask_and_parse
from lr_eval.records import CAUSES, SCORED, TAMPERED, UNSCORED, JudgeCall, JudgeReport, Verdict
from lr_eval.types import ChatRequest, ChatResult

from .judge_config import DEFAULT_REASKS


class JudgeSpec(ABC):
    """How one task family asks the judge about a sample and turns the answers into a score."""

    template_id: str = ""
    template_version: str = ""
    #: The scale of one rating, for reports (e.g. (1, 3)).
    scale: tuple[float, float] = (0.0, 10.0)
    #: The scale of a sample's value (what `combine` returns; a tampered sample scores its minimum).
    sample_scale: tuple[float, float] = (0.0, 100.0)

    def __init__(self, task: str, metadata: dict[str, Any] | None = None, max_tokens: int = 1024):
        self.task = task
        self.metadata = dict(metadata or {})
        self.max_tokens = max_tokens

    @abstractmethod
    def requests(self, doc: dict[str, Any], response: str) -> list[ChatRequest]:
        """The judge calls for one sample (e.g. one per reference answer)."""

    @abstractmethod
    def parse(self, text: str | None) -> Parsed:
        """One judge answer -> rating on `scale`, or unscored with a reason."""

    @abstractmethod
    def combine(self, doc: dict[str, Any], ratings: list[Parsed]) -> Parsed:
        """The sample's score on `sample_scale` from its calls' ratings (unscored when it cannot be known;
        tampered when a call's verdict could be the evaluated text's)."""

    def call_info(self, doc: dict[str, Any], index: int) -> dict[str, Any]:
        """Extra fields logged with the index-th call's judgement (e.g. which reference)."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {"template_id": self.template_id, "template_version": self.template_version,
                "rating_scale": list(self.scale)}


def judge_cost(results: Sequence[ChatResult], client: JudgeClient) -> float | None:
    """What the paid (answered, uncached) calls cost in USD; None when the judge's price is unknown."""
    price = client.meter.price
    if price is None:
        return None
    return sum((r.usage.input_tokens * price[0] + r.usage.output_tokens * price[1]) / 1e6
               for r in results if r.ok and not r.cached)


def call_usage(results: Sequence[ChatResult]) -> dict[str, Any]:
    return {"calls": len(results), "input_tokens": sum(r.usage.input_tokens for r in results),
            "output_tokens": sum(r.usage.output_tokens for r in results), "cached": all(r.cached for r in results)}


def judge_call(spec: JudgeSpec, parsed: Parsed, results: Sequence[ChatResult], client: JudgeClient,
               info: dict[str, Any]) -> JudgeCall:
    """One call's record: its template, the judge's answer, what was read from it and what it cost."""
    details: dict[str, Any] = {**info, "clamped": parsed.clamped, "constrained": parsed.constrained,
                               "error": results[-1].error}
    if parsed.from_logprobs:
        details["rating_argmax"] = parsed.argmax
    if len(results) > 1:
        details["reask_answer"] = results[-1].content
    return JudgeCall(status=parsed.status, value=parsed.value, cause=parsed.cause, reason=parsed.reason,
                     template_id=spec.template_id, template_version=spec.template_version,
                     answer=results[0].content if results[0].ok else None, usage=call_usage(results),
                     cost_usd=judge_cost(results, client), details=details)


def count_verdicts(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """The JudgeReport's sample counts: judged, scored, tampered, unscored (judge-caused), reasons, causes."""
    reasons = Counter(v.reason or "unknown" for v in verdicts if v.status == UNSCORED)
    causes = Counter(v.cause for v in verdicts if v.cause is not None)
    return {"judged": len(verdicts), "scored": sum(v.status == SCORED for v in verdicts),
            "tampered": sum(v.status == TAMPERED for v in verdicts), "unscored": sum(reasons.values()),
            "unscored_reasons": dict(reasons), "tampered_reasons": dict(Counter(
                v.reason or "unknown" for v in verdicts if v.status == TAMPERED)),
            "causes": {c: causes.get(c, 0) for c in CAUSES}}


def judge_samples(spec: JudgeSpec, client: JudgeClient, docs: Sequence[dict[str, Any]], responses: Sequence[str],
                  reasks: int = DEFAULT_REASKS, desc: str | None = None,
                  judge: str | None = None) -> tuple[list[Verdict], JudgeReport]:
    """Judge every sample in one concurrent batch; returns one :class:`~lr_eval.records.Verdict` per sample
    (its value on the spec's `sample_scale`, its judge calls) and the judge report (`judge` describes the judge
    configuration)."""
    plan = [(i, j, req) for i, (doc, resp) in enumerate(zip(docs, responses, strict=True))
            for j, req in enumerate(spec.requests(doc, resp))]
    call_stats = ParseStats()

    async def run_all() -> list[tuple[Parsed, list[ChatResult]]]:
        with client.progress(desc or f"judging {spec.task}", len(plan)):
            return await gather_or_cancel([ask_and_parse(client, req, spec.parse, reasks, call_stats)
                                           for _, _, req in plan])

    outcomes = client.run_coroutine(run_all)
    per_sample: list[list[tuple[int, Parsed, list[ChatResult]]]] = [[] for _ in docs]
    for (i, j, _), (parsed, results) in zip(plan, outcomes, strict=True):
        per_sample[i].append((j, parsed, results))

    verdicts: list[Verdict] = []
    lo, hi = spec.sample_scale
    for doc, resp, calls in zip(docs, responses, per_sample, strict=True):
        final = spec.combine(doc, [p for _, p, _ in calls])
        cost = judge_cost([r for _, _, rs in calls for r in rs], client)
        value = lo if final.tampered else final.value
        verdicts.append(Verdict(
            status=final.status, scale=(lo, hi), value=value, cause=final.cause, reason=final.reason,
            response=resp, calls=[judge_call(spec, p, rs, client, spec.call_info(doc, j)) for j, p, rs in calls],
            judge={"model": client.model, "template": f"{spec.template_id}@{spec.template_version}"},
            cost_usd=cost, details={"clamped": final.clamped}))
    details = spec.describe()
    costs = [v.cost_usd for v in verdicts]
    report = JudgeReport(
        model=client.model, judge=judge, template_id=details.pop("template_id", None),
        template_version=details.pop("template_version", None), samples=count_verdicts(verdicts),
        usage=client.summary(),
        cost_usd=None if client.meter.price is None else round(sum(c or 0.0 for c in costs), 6),
        details={**details, "sample_scale": [lo, hi], "reasks": reasks, "calls": call_stats.to_dict()})
    return verdicts, report
