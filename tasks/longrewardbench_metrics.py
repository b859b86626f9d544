"""Long-RewardBench metrics, as the official evaluator reports them, plus what it leaves unsaid.

An item's judgements ("orders": one per order shown, or one reward comparison) each end as:

* ``scored``: ``value`` is the official ``compare_shuffled`` score, the share of candidates placed at their
  true rank (a pair: 1 or 0; Best-of-N: partial credit);
* ``tampered``: the judge's verdict could have come from the evaluated answers (their verdict syntax): 0,
  flagged, never skipped;
* ``unscored`` (the judge gave no readable verdict, or a reward could not be computed), ``tie`` (equal
  rewards) and ``partial_reward`` (rewards averaging different dimensions, not comparable): no value.

The item's score is the mean over its judgements with every judgement that has no value counted 0 -- the
official evaluator counts an unreadable judgement as 0, so these accuracies are comparable with the paper's,
and nobody raises them by being unscorable. ``accuracy_decided`` (over scored judgements only) and the rate
of each status are reported beside them.

Cells (each: accuracy, n, 95% bootstrap interval over items), named as the paper's table: one per task
(PairWise items, as the official evaluator), ``Same`` / ``Diff`` (PairWise ``subtype`` same or not),
``PairWise``, ``Rank<subtype>`` (Best-of-N by ``subtype``), ``BestOfN``, one per length bucket 4k-128k
(PairWise items, by ``ctx_length_for_length``) and ``AVG`` (every item).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from lr_eval.reward.agreement import bootstrap_ci

from .longrewardbench import LENGTHS, TASKS

STATUSES = ("scored", "tampered", "unscored", "tie", "partial_reward")


def item_score(item: Mapping[str, Any]) -> float:
    """The official per-item result: the mean over its judgements, those without a value counted 0."""
    outcomes = item["orders"]
    return sum(o["value"] or 0.0 for o in outcomes) / len(outcomes)


def cell(items: Sequence[Mapping[str, Any]], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy of a group of items with its size and 95% bootstrap interval (None for an empty group, or with
    ``n_boot`` 0)."""
    scores = [item_score(i) for i in items]
    if not scores:
        return {"accuracy": None, "n": 0, "ci95": None}
    ci = list(bootstrap_ci(scores, n_boot=n_boot, seed=seed)) if n_boot > 0 else None
    return {"accuracy": sum(scores) / len(scores), "n": len(scores), "ci95": ci}


def _best_position(outcome: Mapping[str, Any]) -> int | None:
    """The shown position (0 = A) the judgement ranked first, None without a ranking."""
    ranking, order = outcome.get("ranking"), outcome.get("order")
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
        scored = [o for o in item["orders"] if o["status"] == "scored" and o.get("ranking")]
        for o in scored:
            pos = _best_position(o)
            if pos is not None:
                decided += 1
                first += int(pos == 0)
        if len(item["orders"]) == 2 and len(scored) == 2:
            both += 1
            same += int(scored[0]["ranking"][0] == scored[1]["ranking"][0])
    return {"pairs_both_scored": both, "consistent": same, "rate": same / both if both else None,
            "first_position_preferred": first / decided if decided else None, "pair_judgements_scored": decided}


def summarize(items: Sequence[Mapping[str, Any]], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The report: the paper's cells, status counts and rates, decided accuracy and both-order consistency."""
    def group(keep: Callable[[Mapping[str, Any]], bool]) -> dict[str, Any]:
        return cell([i for i in items if keep(i)], n_boot, seed)

    pairs = [i for i in items if i["tasktype"] == "PairWise"]
    tasks = [t for t in TASKS if any(i["task"] == t for i in items)]
    tasks += sorted({str(i["task"]) for i in items} - set(tasks))
    ranks = sorted({str(i["subtype"]) for i in items if i["tasktype"] == "BestOfN"}, key=lambda s: (len(s), s))
    cells: dict[str, Any] = {t: group(lambda i, t=t: i["tasktype"] == "PairWise" and i["task"] == t) for t in tasks}
    cells["Same"] = cell([i for i in pairs if i.get("subtype") == "same"], n_boot, seed)
    cells["Diff"] = cell([i for i in pairs if i.get("subtype") != "same"], n_boot, seed)
    cells["PairWise"] = cell(pairs, n_boot, seed)
    for r in ranks:
        cells[f"Rank{r}"] = group(lambda i, r=r: i["tasktype"] == "BestOfN" and str(i["subtype"]) == r)
    cells["BestOfN"] = group(lambda i: i["tasktype"] == "BestOfN")
    for bucket in LENGTHS:
        cells[bucket] = cell([i for i in pairs if i.get("length") == bucket], n_boot, seed)
    other = sorted({str(i.get("length")) for i in pairs} - set(LENGTHS))
    if other:
        cells["other lengths"] = cell([i for i in pairs if str(i.get("length")) in other], n_boot, seed)
    cells["AVG"] = cell(items, n_boot, seed)

    statuses: Counter[str] = Counter(o["status"] for i in items for o in i["orders"])
    total = sum(statuses.values())
    reasons: Counter[str] = Counter(o.get("reason") or o["status"] for i in items for o in i["orders"]
                                    if o["status"] not in ("scored",))
    decided = [o["value"] for i in items for o in i["orders"] if o["status"] == "scored"]
    return {
        "items": len(items), "judgements": total, "cells": cells,
        "statuses": {s: statuses.get(s, 0) for s in STATUSES},
        "rates": {s: (statuses.get(s, 0) / total if total else None) for s in STATUSES if s != "scored"},
        "not_scored_reasons": dict(reasons.most_common()),
        "accuracy_decided": sum(decided) / len(decided) if decided else None,
        "consistency": consistency(items),
        "note": "accuracy counts every judgement without a value (unscored, tie, partial reward) as 0 and a "
                "tampered one as 0, as the official evaluator counts an unreadable judgement",
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
