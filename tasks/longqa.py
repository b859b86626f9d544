"""LongReward as a metric: ``longreward_longqa`` and ``longreward_longqa_longbench_<dataset>``.

The model answers long-context questions; every answer is then scored by the LongReward scorer of
``lr_eval.reward`` (helpfulness, logicality, faithfulness, completeness, 0-10, and their mean, the
reward) -- the same code path as ``lr-eval score`` and the DPO pipeline: ``RewardSettings``,
``build_scorer(settings, judge)`` and ``LongRewardScorer.score_groups``, with one group per question.

Tasks:

* ``longreward_longqa``: the questions of a file named by ``--metadata '{"longqa_data": "FILE"}'`` or
  ``LR_LONGQA_DATA`` (JSON list or JSONL; each record ``context`` and ``question``, optionally ``id``,
  ``answers`` (kept for the log) and ``prompt`` (the model's prompt; default: :data:`DEFAULT_PROMPT`,
  or ``longqa_prompt`` with ``{context}`` and ``{question}``)). Without a file: all single- and
  multi-document QA questions of LongBench, dataset after dataset.
* ``longreward_longqa_longbench_<dataset>`` for narrativeqa, qasper, multifieldqa_en, multifieldqa_zh
  (group ``longreward_longqa_longbench_single_doc_qa``) and hotpotqa, 2wikimqa, musique, dureader
  (``..._multi_doc_qa``); ``longreward_longqa_longbench`` groups both (unweighted means).
  Rows, official prompt templates and ``pred.py`` truncation come from
  :mod:`lr_eval.tasks.longbench_data` (overrides ``longbench_data`` / ``LR_LONGBENCH_DATA`` and
  ``longbench_prompts`` / ``LR_LONGBENCH_PROMPTS``).
* ``longreward_longqa_infinitebench_enqa``: InfiniteBench En.QA (351 questions over whole novels, ~190k
  tokens) with its official rows, prompt and truncation from :mod:`lr_eval.tasks.infinitebench` (overrides
  ``infinitebench_data`` / ``LR_INFINITEBENCH_DATA`` and ``infinitebench_prompts`` /
  ``LR_INFINITEBENCH_PROMPTS``). The scorer reads each book in ``reward_extraction_chunk_tokens`` chunks
  (4096: ~47 extraction calls per book) within ``reward_max_context_tokens``; ``--metadata
  '{"judge_dry_run": true}'`` estimates the calls, tokens and cost without sending anything.

The model sees the prompt middle-truncated to 64k tokens of its tokenizer (or its window minus 1024;
``--metadata '{"max_length": N}'`` sets the budget) and generates greedily up to 1024 new tokens (the
paper's LongBench setting). The scorer sees the whole context and the question.

LongReward settings: ``--metadata`` keys ``reward_<option>`` are the fields of
:class:`lr_eval.reward.RewardSettings`, the schema of ``lr-eval score``'s options (``reward_embedder``,
``reward_k``, ``reward_weights``, ``reward_language``, ``reward_tokenizer``, ``reward_judge_window``,
``reward_max_statements``, ``reward_support_batch``, ...; defaults and where they depart from the paper:
see that class; the default embedder is the local MiniLM, ``reward_embedder: bm25`` needs no model). The
judge is set up as for every judged task (``LR_JUDGE_*``, ``LR_JUDGE_CONFIG`` or ``judge_*`` metadata keys).

Metrics: ``helpfulness``, ``logicality``, ``faithfulness``, ``completeness``, ``longreward`` (means
over the answers where they are counted, 0-10: scored, or tampered at 0, `lr_eval.trust`),
``longreward_pessimistic`` (an answer without a reward counted as 0), ``<metric>_unscored`` (counts of
answers where the metric could not be scored; e.g. faithfulness of an answer that states no fact),
``longreward_tampered`` (answers with a dimension whose verdict the answer could have supplied) and
``longreward_partial`` (answers whose reward averages fewer than the enabled dimensions). Each sample's
``filtered_resps`` holds the scorer's full verdict, audit trail included; the results' ``configs.<task>.
metadata.judge`` holds the judge, the LongReward settings, flag and parse counts and usage.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict

from lr_eval.records import (
    JUDGE_CAUSE,
    SCORED,
    TAMPERED,
    TEXT_CAUSE,
    UNSCORED,
    JudgeCall,
    JudgeReport,
    Verdict,
    cause_of,
)
from lr_eval.reward.records import DIMENSIONS, SCALE, ResponseScore
from lr_eval.reward.settings import RewardSettings
from lr_eval.suite import FAMILY

from .judge_config import JudgeNotConfigured, load_judge_config, no_judge_message, require_judge
from .judge_filters import BatchJudgeFilter
from .lm_eval_adapter import register_judge_filter
from .longbench_data import build_docs, load_prompts, load_rows, middle_truncate
from .truncation import prompt_budget, prompt_tokenizer
from .verdict_metrics import decode_verdict

log = logging.getLogger(__name__)

TASK = FAMILY["longqa"].prefix
LONGBENCH_PREFIX = FAMILY["longqa_longbench"].prefix
ENQA_TASK = FAMILY["longqa_infinitebench"].prefix
FILTER_NAME = "longreward_reward_longqa"
QA_DATASETS: tuple[str, ...] = FAMILY["longqa_longbench"].names
MAX_NEW_TOKENS = 1024
DATA_KEY, DATA_ENV = "longqa_data", "LR_LONGQA_DATA"
PROMPT_KEY = "longqa_prompt"
REWARD_PREFIX = "reward_"
#: Metric name per ResponseScore field.
METRICS = {"helpfulness": "helpfulness", "logicality": "logicality", "faithfulness": "faithfulness",
           "completeness": "completeness", "reward": "longreward"}

DEFAULT_PROMPT = ("Read the following text and answer the question.\n\n{context}\n\n"
                  "Question: {question}\nAnswer:")


# ------------------------------------------------------------------------------------------ settings


def reward_settings(metadata: Mapping[str, Any] | None) -> RewardSettings:
    """The ``reward_<option>`` metadata keys as LongReward settings (the schema of ``lr-eval score``'s flags).

    One schema: the metric and the training reward accept the same settings, names, types and defaults.
    """
    return RewardSettings.from_mapping(metadata or {}, REWARD_PREFIX, where="--metadata")


# ------------------------------------------------------------------------------------------ data


def _read_records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        data = json.loads(text)
    else:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list or JSON lines of {{context, question}} records")
    return data


def _answers(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def file_docs(path: Path, template: str, tokenizer: Any, budget: int) -> list[dict[str, Any]]:
    """Docs from our own long-context QA file: the prompt is the record's, or the template filled in."""
    docs = []
    for n, rec in enumerate(_read_records(path)):
        if not isinstance(rec, dict) or not isinstance(rec.get("context"), str) \
                or not isinstance(rec.get("question"), str):
            raise ValueError(f"{path}: record {n} needs string fields 'context' and 'question'")
        raw = rec.get("prompt") or template.format(context=rec["context"], question=rec["question"])
        prompt, truncated, n_tokens = middle_truncate(str(raw), tokenizer, budget)
        docs.append({"id": str(rec.get("id", n)), "source": path.stem, "question": rec["question"],
                     "context": rec["context"], "prompt": prompt, "prompt_tokens": n_tokens, "truncated": truncated,
                     "answers": _answers(rec.get("answers", rec.get("answer")))})
    return docs


def longbench_docs(datasets: Sequence[str], metadata: Mapping[str, Any], tokenizer: Any,
                   budget: int) -> list[dict[str, Any]]:
    """LongBench QA rows with the official prompts and truncation; the scorer gets the whole context."""
    source = metadata.get("longbench_data") or os.environ.get("LR_LONGBENCH_DATA") or None
    templates = load_prompts(metadata.get("longbench_prompts") or os.environ.get("LR_LONGBENCH_PROMPTS") or None)
    docs = []
    for dataset in datasets:
        rows = load_rows(dataset, source, revision=metadata.get("longbench_revision"))
        for row, built in zip(rows, build_docs(rows, dataset, templates[dataset], tokenizer=tokenizer,
                                               max_length=budget), strict=True):
            docs.append({"id": str(row.get("_id", "")), "source": dataset, "question": str(row["input"]),
                         "context": str(row["context"]), "prompt": built["prompt"],
                         "prompt_tokens": built["prompt_tokens"], "truncated": built["prompt_truncated"],
                         "answers": _answers(row.get("answers"))})
    return docs


def enqa_docs(metadata: Mapping[str, Any], tokenizer: Any, budget: int) -> list[dict[str, Any]]:
    """InfiniteBench En.QA rows with its official prompt and truncation; the scorer gets the whole book."""
    from . import infinitebench

    rows = infinitebench.rows_from(metadata)
    built = infinitebench.build_docs(rows, infinitebench.load_template(metadata), tokenizer, budget)
    return [{"id": doc["id"], "source": infinitebench.ENQA, "question": row["input"], "context": row["context"],
             "prompt": doc["prompt"], "prompt_tokens": doc["prompt_tokens"], "truncated": doc["prompt_truncated"],
             "answers": doc["answers"]} for row, doc in zip(rows, built, strict=True)]


def load(*, longbench_dataset: str | None = None, infinitebench_enqa: bool = False, **metadata: Any) -> DatasetDict:
    """custom_dataset hook: judge and LongReward settings checked first (before generation), then the docs."""
    if longbench_dataset is not None and longbench_dataset not in QA_DATASETS:
        raise ValueError(f"{longbench_dataset!r} is not a LongBench QA dataset: {', '.join(QA_DATASETS)}")
    if longbench_dataset:
        task = f"{LONGBENCH_PREFIX}_{longbench_dataset}"
    else:
        task = ENQA_TASK if infinitebench_enqa else TASK
    require_judge(task, metadata)
    reward_settings(metadata)  # settings errors (e.g. reward_weights) surface now, not after generation
    tokenizer = prompt_tokenizer(metadata, task)
    budget = prompt_budget(metadata, MAX_NEW_TOKENS)
    source = None
    if not (longbench_dataset or infinitebench_enqa):
        source = metadata.get(DATA_KEY) or os.environ.get(DATA_ENV) or None
    if infinitebench_enqa:
        docs = enqa_docs(metadata, tokenizer, budget)
    elif source:
        path = Path(str(source)).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{DATA_KEY}: {path} does not exist")
        docs = file_docs(path, str(metadata.get(PROMPT_KEY) or DEFAULT_PROMPT), tokenizer, budget)
    else:
        docs = longbench_docs([longbench_dataset] if longbench_dataset else QA_DATASETS, metadata, tokenizer, budget)
    if not docs:
        raise ValueError(f"{task}: no questions")
    log.info("%s: %d questions (%s), %d prompts truncated", task, len(docs),
             source or ("InfiniteBench En.QA" if infinitebench_enqa else "LongBench"),
             sum(d["truncated"] for d in docs))
    return DatasetDict({"test": Dataset.from_list(docs)})


# ------------------------------------------------------------------------------------------ scoring


def score_answers(metadata: Mapping[str, Any], docs: Sequence[Mapping[str, Any]], responses: Sequence[str],
                  task: str = TASK) -> tuple[list[Verdict], JudgeReport]:
    """LongReward verdicts for every answer (all groups in one batch) and a report for the results file."""
    from lr_eval.reward import build_scorer

    judge = load_judge_config(dict(metadata))
    if not judge.configured:
        raise JudgeNotConfigured(no_judge_message(task))
    settings = reward_settings(metadata)
    scorer = build_scorer(settings, judge)
    groups = [(str(doc["context"]), str(doc["question"]), [resp]) for doc, resp in zip(docs, responses, strict=True)]
    scores = scorer.score_groups(groups, settings.groups_in_flight, None, f"LongReward {task}")
    enabled = scorer.config.enabled()
    verdicts = [reward_verdict(resp, group[0], enabled, scorer.client.model)
                for resp, group in zip(responses, scores, strict=True)]
    unscored: dict[str, Counter[str]] = {d: Counter() for d in DIMENSIONS}
    tampered: Counter[str] = Counter()
    for group in scores:
        for dim, reason in group[0].unscored.items():
            unscored[dim][reason] += 1
        tampered.update(group[0].tampered)
    usage = scorer.client.summary()
    report = JudgeReport(
        model=scorer.client.model, judge=judge.describe(), usage=usage, cost_usd=usage.get("cost_usd"),
        samples={"judged": len(verdicts), "rewarded": sum(v.value is not None for v in verdicts),
                 "scored": sum(v.status == SCORED for v in verdicts),
                 "tampered": {d: tampered.get(d, 0) for d in DIMENSIONS},
                 "unscored": {d: sum(c.values()) for d, c in unscored.items()},
                 "unscored_reasons": {d: dict(c) for d, c in unscored.items() if c},
                 "causes": {JUDGE_CAUSE: sum(sum(c.values()) for c in unscored.values()),
                            TEXT_CAUSE: sum(tampered.values())},
                 "partial": sum(group[0].partial(enabled) for group in scores)},
        details={"method": "LongReward (lr_eval.reward.scorer)", "reward_config": scorer.config.to_dict(),
                 "tokenizer": scorer.tokenizer_label,
                 "flags": dict(scorer.flag_counts),
                 "calls": {stage: stats.to_dict() for stage, stats in scorer.parse_stats.items()},
                 "embedded_tokens": scorer.embedded_tokens})
    return verdicts, report


def reward_verdict(response: str, score: ResponseScore, enabled: Sequence[str], model: str) -> Verdict:
    """A LongReward score as the per-sample verdict: the reward on 0-10, one judge call per enabled dimension
    (its value, status and reason), the score record itself in the details (audit trail included)."""
    calls = []
    for dim in enabled:
        status = TAMPERED if dim in score.tampered else UNSCORED if getattr(score, dim) is None else SCORED
        calls.append(JudgeCall(status=status, value=getattr(score, dim), cause=cause_of(status),
                               reason=score.tampered.get(dim) or score.unscored.get(dim),
                               details={"dimension": dim}))
    reasons = score.tampered or (score.unscored if score.reward is None else {})
    record = {k: v for k, v in score.to_dict().items() if k != "version"}
    return Verdict(status=score.status, scale=SCALE, value=score.reward,
                   reason="; ".join(f"{d}: {r}" for d, r in reasons.items()) or None, response=response,
                   calls=calls, judge={"model": model}, cost_usd=None, details=record)


class LongRewardFilter(BatchJudgeFilter):
    """Scores every answer of the task with LongReward in one batch; verdicts become filtered_resps (JSON)."""

    doc_fields = ("context", "question")
    default_task = TASK
    json_default = str

    def judge(self, name: str, metadata: dict[str, Any], docs: Sequence[dict[str, Any]],
              responses: list[str]) -> tuple[list[Verdict], JudgeReport]:
        return score_answers(metadata, docs, responses, name)

    def log_summary(self, name: str, n: int, report: JudgeReport) -> None:
        samples = report.samples
        log.warning("%s: LongReward scored %d answers with %s: %d rewarded, %d with a tampered dimension (scored "
                    "0), %d with a partial reward", name, n, report.model, samples["rewarded"],
                    report.tampered_items, samples["partial"])


register_judge_filter(FILTER_NAME, LongRewardFilter)


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """The four dimensions and the reward (when counted: scored, or tampered at 0; the means leave the rest out),
    ``longreward_pessimistic`` (an unscored reward counted as 0), unscored counts per metric, and per answer
    ``longreward_tampered`` (a dimension the answer could have supplied) and ``longreward_partial`` (a reward
    averaging fewer than the enabled dimensions)."""
    verdict = decode_verdict(results, TASK, filter_name="longreward", kind="LongReward")
    score = ResponseScore.from_dict(verdict.details)
    out: dict[str, float] = {}
    for field, metric in METRICS.items():
        value = getattr(score, field)
        if value is not None:
            out[metric] = float(value)
        missing = value is None and (field == "reward" or field in score.unscored)
        out[f"{metric}_unscored"] = 1.0 if missing else 0.0
    out["longreward_pessimistic"] = verdict.pessimistic()
    out["longreward_tampered"] = float(bool(score.tampered))
    out["longreward_partial"] = float(score.partial([*score.averaged, *score.unscored]))
    return out
