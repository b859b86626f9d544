"""Long-RewardBench as lm-eval tasks (see :mod:`lr_eval.tasks.longrewardbench` for the data and protocol).

* ``longreward_longrewardbench``: the model under test is the judge. One doc per item and order (pairs in both
  orders, Best-of-N once in a seeded order); the prompt is the official system prompt, a blank line and the
  official user prompt (lm-eval 0.4.13 has no per-document system message: with ``--apply_chat_template`` the
  whole text is the user turn). The model's answer is read through the trust layer, as a judge client's.
  Generation: greedy, up to 2048 new tokens (the official setting).
* ``longreward_longrewardbench_longreward``: LongReward over a configured judge (``LR_JUDGE_*``,
  ``LR_JUDGE_CONFIG`` or ``--metadata judge_*``; LongReward options as ``--metadata reward_*``, as
  ``longreward_longqa``) scores every candidate and prefers the higher reward. The lm-eval model is not
  judged: it is asked one token of a fixed one-line prompt per item, and its answer is not used.

``--metadata``: ``longrewardbench_data`` (folder or file; else the pinned hub files), ``longrewardbench_tasks``
and ``longrewardbench_formats`` (comma-separated), ``longrewardbench_prompts`` (a local official prompt file),
``longrewardbench_seed``.

Metrics (accuracies in percent, as :mod:`lr_eval.tasks.longrewardbench_metrics`; every judgement without a value
counts 0; ``consistency`` and ``first_position`` are rates 0-1):
``acc`` (all items), ``acc_pairwise``, ``acc_bestofn``, ``acc_<task>`` (PairWise items), ``acc_same``,
``acc_diff``, ``acc_rank<n>``, ``acc_<length>`` (PairWise items, 4k-128k), ``acc_counted`` (unscored items
left out), ``consistency`` (both-order), ``first_position`` (share of scored pair judgements preferring answer A),
and the counts ``unscored``, ``tampered``, ``tie``, ``partial_reward``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from datasets import Dataset, DatasetDict

from lr_eval.records import JudgeCall, JudgeReport, Verdict
from lr_eval.reward.settings import RewardSettings

from .judge_config import build_judge, require_judge
from .judge_filters import BatchJudgeFilter
from .lm_eval_adapter import register_judge_filter
from .verdict_metrics import decode_verdict
from .longrewardbench import (
    FORMATS,
    LENGTHS,
    SEED,
    TASKS,
    Item,
    Prompts,
    item_verdict,
    judge_longreward,
    load_items,
    official_request,
    orders,
    read_generated,
)
from .longrewardbench_metrics import cell, consistency, labelled

TASK = "longreward_longrewardbench"
REWARD_TASK = "longreward_longrewardbench_longreward"
FILTER_NAME = "longreward_longrewardbench_reward"
REWARD_PROMPT = "Long-RewardBench item judged by LongReward; this answer is not used."


def _names(metadata: Mapping[str, Any], key: str, default: Sequence[str]) -> list[str]:
    value = metadata.get(key)
    if value in (None, ""):
        return list(default)
    return [v.strip() for v in (value if isinstance(value, (list, tuple)) else str(value).split(",")) if v.strip()]


def _items(metadata: Mapping[str, Any]) -> list[Item]:
    tasks = _names(metadata, "longrewardbench_tasks", TASKS)
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        raise ValueError(f"longrewardbench_tasks: unknown task {bad[0]!r} (tasks: {', '.join(TASKS)})")
    items = load_items(metadata, tasks, _names(metadata, "longrewardbench_formats", FORMATS))
    if not items:
        raise ValueError("Long-RewardBench: no items (check longrewardbench_data, _tasks and _formats)")
    return items


def _seed(metadata: Mapping[str, Any]) -> int:
    value = metadata.get("longrewardbench_seed")
    return SEED if value in (None, "") else int(value)


def load(*, longreward: bool = False, **metadata: Any) -> DatasetDict:
    """custom_dataset hook: the judge (LongReward mode) and the prompts are checked before generation."""
    if longreward:
        require_judge(REWARD_TASK, metadata)
        RewardSettings.from_mapping(metadata, "reward_", where="--metadata")
        docs = [item.to_doc() for item in _items(metadata)]
        return DatasetDict({"test": Dataset.from_list(docs)})
    prompts, seed = Prompts.load(metadata), _seed(metadata)
    docs = [{**item.to_doc(), "order": list(order), "system": prompts.system(len(order)), "version": prompts.version}
            for item in _items(metadata) for order in orders(item, seed)]
    return DatasetDict({"test": Dataset.from_list(docs)})


def doc_to_text(doc: Mapping[str, Any]) -> str:
    """The official system prompt, a blank line and the official user prompt (built here, not stored: a doc
    keeps the long prompt once)."""
    if "order" not in doc:
        return REWARD_PROMPT
    request, _ = official_request(str(doc["system"]), str(doc["version"]), Item.from_doc(doc), doc["order"])
    system, user = (m["content"] for m in request.messages)
    return f"{system}\n\n{user}"


_LABELS = ("task", "index", "tasktype", "subtype", "length")


def _value(doc: Mapping[str, Any], call: JudgeCall) -> dict[str, Any]:
    """What every metric of one doc carries: the item's labels and this judgement (a judge call record)."""
    mode = "prompt" if "order" in doc else "longreward"
    return {**{k: doc[k] for k in _LABELS}, "mode": mode, "key": f"{doc['task']}:{doc['index']}",
            "call": call.to_dict()}


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """The model's judgement of one doc (generative mode), read through the trust layer."""
    answer = results[0] if results else ""
    call = read_generated(str(doc["system"]), str(doc["version"]), Item.from_doc(doc), doc["order"], str(answer))
    return {name: _value(doc, call) for name in METRICS}


def process_reward_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """One item's LongReward comparison (the filter's verdict holds it as its one call)."""
    verdict = decode_verdict(results, REWARD_TASK, filter_name="longreward", kind="LongReward")
    return {name: _value(doc, verdict.calls[0]) for name in METRICS}


class LongRewardBenchFilter(BatchJudgeFilter):
    """Scores every item's candidates with LongReward in one batch; each verdict is the item's record."""

    doc_fields = ("task", "index", "tasktype", "prompt", "candidates")
    default_task = REWARD_TASK
    json_default = str

    def judge(self, name: str, metadata: dict[str, Any], docs: Sequence[dict[str, Any]],
              responses: list[str]) -> tuple[list[Verdict], JudgeReport]:
        from lr_eval.reward import build_scorer

        _, cfg = build_judge(name, metadata)
        settings = RewardSettings.from_mapping(metadata, "reward_", where="--metadata", ignore_others=True)
        verdicts, report = judge_longreward([Item.from_doc(d) for d in docs], build_scorer(settings, cfg), cfg,
                                            settings.groups_in_flight)
        for verdict, response in zip(verdicts, responses, strict=True):
            verdict.response = response
        return verdicts, report


register_judge_filter(FILTER_NAME, LongRewardBenchFilter)


# ------------------------------------------------------------------------------------------------ aggregation


def _records(values: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-doc values grouped back into item verdicts (the metrics module's input), in first-seen order: the
    same :func:`~lr_eval.tasks.longrewardbench.item_verdict` as the command's."""
    items: dict[str, tuple[dict[str, Any], list[JudgeCall]]] = {}
    for v in values:
        labels, calls = items.setdefault(v["key"], ({k: v[k] for k in (*_LABELS, "key", "mode")}, []))
        calls.append(JudgeCall.from_dict(v["call"]))
    return [item_verdict(labels, calls).to_dict() for labels, calls in items.values()]


def _accuracy(keep: Callable[[Mapping[str, Any]], bool]) -> Callable[[Sequence[Mapping[str, Any]]], float]:
    """Accuracy in percent (the paper's scale and the suite's 0-100) of the items `keep` takes."""
    def aggregate(values: Sequence[Mapping[str, Any]]) -> float:
        acc = cell([r for r in _records(values) if keep(r)], n_boot=0)["accuracy"]
        return float("nan") if acc is None else 100.0 * float(acc)
    return aggregate


def _pair(r: Mapping[str, Any]) -> bool:
    return r["tasktype"] == "PairWise"


def _count(status: str) -> Callable[[Sequence[Mapping[str, Any]]], float]:
    """Judgements with `status` (scored, tampered, unscored), or with the flag `status` (tie, partial_reward)."""
    def aggregate(values: Sequence[Mapping[str, Any]]) -> float:
        return float(sum(v["call"]["status"] == status or bool(v["call"].get(status)) for v in values))
    return aggregate


def _counted(values: Sequence[Mapping[str, Any]]) -> float:
    counted = [float(r["value"]) for r in _records(values) if r["value"] is not None]
    return 100.0 * sum(counted) / len(counted) if counted else float("nan")


def _consistency(key: str) -> Callable[[Sequence[Mapping[str, Any]]], float]:
    def aggregate(values: Sequence[Mapping[str, Any]]) -> float:
        value = consistency(_records(values))[key]
        return float("nan") if value is None else float(value)
    return aggregate


#: metric -> aggregation over the per-doc values (the YAMLs name them ``!function ...AGGREGATE.<metric>``).
AGGREGATE: dict[str, Callable[[Sequence[Mapping[str, Any]]], float]] = {
    "acc": _accuracy(lambda r: True),
    "acc_pairwise": _accuracy(_pair),
    "acc_bestofn": _accuracy(lambda r: r["tasktype"] == "BestOfN"),
    **{f"acc_{t.lower()}": _accuracy(labelled("PairWise", "task", t)) for t in TASKS},
    "acc_same": _accuracy(lambda r: _pair(r) and r["subtype"] == "same"),
    "acc_diff": _accuracy(lambda r: _pair(r) and r["subtype"] != "same"),
    **{f"acc_rank{n}": _accuracy(labelled("BestOfN", "subtype", str(n))) for n in (2, 3, 4)},
    **{f"acc_{b}": _accuracy(labelled("PairWise", "length", b)) for b in LENGTHS},
    "acc_counted": _counted,
    "consistency": _consistency("rate"),
    "first_position": _consistency("first_position_preferred"),
    **{s: _count(s) for s in ("unscored", "tampered", "tie", "partial_reward")},
}
METRICS: tuple[str, ...] = tuple(AGGREGATE)
globals().update({f"agg_{name}": fn for name, fn in AGGREGATE.items()})  # what the YAMLs' !function names
