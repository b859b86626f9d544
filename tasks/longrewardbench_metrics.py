"""Long-RewardBench metrics, as the official evaluator reports them, plus what it leaves unsaid.

The input is one verdict per item (:class:`lr_eval.records.Verdict` as a dict, its details carrying the item's
labels), its ``calls`` the judgements (one per order shown, or one reward comparison). A judgement is

* ``scored``: ``value`` is the official ``compare_shuffled`` score, the share of candidates placed at their
  true rank (a pair: 1 or 0; Best-of-N: partial credit); a LongReward ``tie`` is scored 0 (no ranking);
* ``tampered``: the verdict could have come from the evaluated answers (:mod:`lr_eval.trust`): 0, counted;
* ``unscored`` (cause ``judge``: no readable verdict, no reward, or a ``partial_reward``): no value.

The item's value is the official per-item score, the mean over its judgements with one without a value
counted 0; a tampered item scores 0, an item with no judgement read is unscored. ``accuracy`` counts an
unscored item as 0 too, as the official evaluator counts an unreadable judgement (so it is comparable with
the paper's, and it is the pessimistic bound: nobody raises it by being unscorable); ``accuracy_counted``
leaves unscored items out (the project's mean); both are reported with the status counts beside them.

Cells (each: accuracy, n, 95% bootstrap interval over items), named as the paper's table: one per task
(PairWise items, as the official evaluator), ``Same`` / ``Diff`` (PairWise ``subtype`` same or not),
``PairWise``, ``Rank<subtype>`` (Best-of-N by ``subtype``), ``BestOfN``, one per length bucket 4k-128k
(PairWise items, by ``ctx_length_for_length``) and ``AVG`` (every item).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from lr_eval.stats import bootstrap_ci

from .longrewardbench import LENGTHS, TASKS

STATUSES = ("scored", "tampered", "unscored")


def item_score(item: Mapping[str, Any]) -> float:
    """The official per-item result: the verdict's value, an unscored item counted 0."""
    return float(item["value"] or 0.0)


Keep = Callable[[Mapping[str, Any]], bool]


def labelled(tasktype: str, field: str | None = None, value: str | None = None) -> Keep:
    """The items of a format (PairWise, BestOfN) whose label `field` is `value` (any, without a field)."""
    def keep(item: Mapping[str, Any]) -> bool:
        return item["tasktype"] == tasktype and (field is None or str(item.get(field)) == value)
    return keep


def cell(items: Sequence[Mapping[str, Any]], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy of a group of items with its size and 95% bootstrap interval (None for an empty group, or with
    ``n_boot`` 0)."""
    scores = [item_score(i) for i in items]
    if not scores:
        return {"accuracy": None, "n": 0, "ci95": None}
    ci = list(bootstrap_ci(scores, n_boot=n_boot, seed=seed)) if n_boot > 0 else None
    return {"accuracy": sum(scores) / len(scores), "n": len(scores), "ci95": ci}


def _best_position(call: Mapping[str, Any]) -> int | None:
    """The shown position (0 = A) the judgement ranked first, None without a ranking."""
    ranking, order = call.get("ranking"), call.get("order")
    if not ranking or not order:
        return None
    return list(order).index(ranking[0])


def consistency(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Both-order consistency of the pairs judged in two orders: the same answer preferred in both, over the
    pairs whose two judgements were both scored; and how often the first shown answer was preferred. (Reward
    comparisons, mode ``longreward``, show no answer first: they are left out.)"""
    both = same = 0
    first = decided = 0
    for item in items:
        if item["tasktype"] != "PairWise" or item.get("mode") == "longreward":
            continue
        scored = [c for c in item["calls"] if c["status"] == "scored" and c.get("ranking")]
        for c in scored:
            pos = _best_position(c)
            if pos is not None:
                decided += 1
                first += int(pos == 0)
        if len(item["calls"]) == 2 and len(scored) == 2:
            both += 1
            same += int(scored[0]["ranking"][0] == scored[1]["ranking"][0])
    return {"pairs_both_scored": both, "consistent": same, "rate": same / both if both else None,
            "first_position_preferred": first / decided if decided else None, "pair_judgements_scored": decided}


def summarize(items: Sequence[Mapping[str, Any]], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The report: the paper's cells, item and judgement status counts and rates (ties and partial rewards
    beside them), the accuracy over counted items and both-order consistency."""
    def group(keep: Keep) -> dict[str, Any]:
        return cell([i for i in items if keep(i)], n_boot, seed)

    pairs = [i for i in items if i["tasktype"] == "PairWise"]
    tasks = [t for t in TASKS if any(i["task"] == t for i in items)]
    tasks += sorted({str(i["task"]) for i in items} - set(tasks))
    ranks = sorted({str(i["subtype"]) for i in items if i["tasktype"] == "BestOfN"}, key=lambda s: (len(s), s))
    cells: dict[str, Any] = {t: group(labelled("PairWise", "task", t)) for t in tasks}
    cells["Same"] = cell([i for i in pairs if i.get("subtype") == "same"], n_boot, seed)
    cells["Diff"] = cell([i for i in pairs if i.get("subtype") != "same"], n_boot, seed)
    cells["PairWise"] = cell(pairs, n_boot, seed)
    for r in ranks:
        cells[f"Rank{r}"] = group(labelled("BestOfN", "subtype", r))
    cells["BestOfN"] = group(labelled("BestOfN"))
    for bucket in LENGTHS:
        cells[bucket] = cell([i for i in pairs if i.get("length") == bucket], n_boot, seed)
    other = sorted({str(i.get("length")) for i in pairs} - set(LENGTHS))
    if other:
        cells["other lengths"] = cell([i for i in pairs if str(i.get("length")) in other], n_boot, seed)
    cells["AVG"] = cell(items, n_boot, seed)

    calls = [c for i in items for c in i["calls"]]
    statuses: Counter[str] = Counter(c["status"] for c in calls)
    item_statuses: Counter[str] = Counter(i["status"] for i in items)
    total = len(calls)
    reasons: Counter[str] = Counter(c.get("reason") or c["status"] for c in calls if c["status"] != "scored")
    counted = [float(i["value"]) for i in items if i["value"] is not None]
    ties = sum(bool(c.get("tie")) for c in calls)
    partial = sum(bool(c.get("partial_reward")) for c in calls)
    return {
        "items": len(items), "judgements": total, "cells": cells,
        "statuses": {s: statuses.get(s, 0) for s in STATUSES}, "ties": ties, "partial_reward": partial,
        "item_statuses": {s: item_statuses.get(s, 0) for s in STATUSES},
        "rates": {**{s: (statuses.get(s, 0) / total if total else None) for s in STATUSES if s != "scored"},
                  "tie": ties / total if total else None},
        "not_scored_reasons": dict(reasons.most_common()),
        "accuracy_counted": sum(counted) / len(counted) if counted else None,
        "consistency": consistency(items),
        "note": "accuracy counts a judgement without a value (unscored) as 0, a tampered one as 0 and a tie as 0, "
                "as the official evaluator counts an unreadable judgement; accuracy_counted leaves unscored items "
                "out",
    }


def rows(report: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(cell, accuracy %, n, 95% interval %) for printing."""
    out = []
    for name, c in report["cells"].items():
        if c["n"] == 0:
            continue
        ci = "-" if c["ci95"] is None else f"{100 * c['ci95'][0]:.1f}-{100 * c['ci95'][1]:.1f}"
        out.append((name, f"{100 * c['accuracy']:.1f}", str(c["n"]), ci))
    return out
