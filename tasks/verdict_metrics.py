"""A judged sample's metric values in lm-eval, from its :class:`~lr_eval.records.Verdict`.

``score`` (on the task's sample scale; a tampered sample at the scale's minimum; absent for an unscored one, so
the mean leaves it out), ``score_pessimistic`` (unscored counted as the minimum: the pessimistic bound),
``judge_unscored`` and ``judge_tampered`` (0/1, summed with :func:`total`) and ``judge_cost_usd`` (summed;
absent when the judge's price is unknown). Nothing unscored ever becomes a default score.

The task YAMLs name :func:`process_results` and :func:`total` by path (``!function
lr_eval.tasks.verdict_metrics.total``): keep those names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lr_eval.records import TAMPERED, UNSCORED, Verdict, verdict_of


def decode_verdict(results: list[Any], task_name: str, filter_name: str = "judge", kind: str = "judge") -> Verdict:
    """The verdict of a process_results call's first result, or a RuntimeError naming the filter to keep."""
    verdict = verdict_of(results[0])
    if verdict is None:
        raise RuntimeError(f"{task_name} without a {kind} verdict: keep the task's `{filter_name}` filter "
                           "in filter_list")
    return verdict


def verdict_metrics(verdict: Verdict, metric: str = "score") -> dict[str, float]:
    """A verdict's metric values: `metric` (scored or tampered, at the minimum; absent when unscored, so the
    mean leaves it out), ``<metric>_pessimistic`` (unscored counted as the scale's minimum), the 0/1 counts
    ``judge_unscored`` and ``judge_tampered`` (summed) and ``judge_cost_usd`` (absent when unpriced)."""
    out: dict[str, float] = {f"{metric}_pessimistic": verdict.pessimistic(),
                             "judge_unscored": float(verdict.status == UNSCORED),
                             "judge_tampered": float(verdict.status == TAMPERED)}
    if verdict.value is not None:
        out[metric] = float(verdict.value)
    if verdict.cost_usd is not None:
        out["judge_cost_usd"] = float(verdict.cost_usd)
    return out


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """Metric values of one judged sample (:func:`verdict_metrics`)."""
    return verdict_metrics(decode_verdict(results, "judged task"))


def total(values: Sequence[float]) -> float:
    """Sum aggregation (lm-eval has none built in): unscored counts and judge cost add up."""
    return float(sum(values))


