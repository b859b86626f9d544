"""The judge filters of the judged lm-eval tasks (judged LongBench, LongBench-Chat, AlpacaEval 2, MT-Bench,
LongReward as a metric).

lm-eval hands a filter every response and doc of the task at once, so all judge calls of the task go to the
judge client in one concurrent batch (:mod:`lr_eval.tasks.judged_samples`). The filter returns one verdict per
sample as JSON text (lm-eval's samples writer applies ``str()`` to every filtered response), which lm-eval logs
as the sample's ``filtered_resps``; :mod:`lr_eval.tasks.verdict_metrics` turns it into metric values. The
judge's identity, template versions, parse counts and usage/cost go into the task's config metadata, which
lm-eval dumps into the results JSON as ``configs.<task>.metadata.judge``. ``lr-eval rejudge`` finds a task's
:class:`BatchJudgeFilter` in its ``filter_list`` and lets lm-eval run the task on the saved docs and responses.
What the filter needs of the running task (name, metadata, --predict_only) comes from
:mod:`lr_eval.tasks.lm_eval_adapter`.
"""

from __future__ import annotations

import json
import logging
import sys
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from lm_eval.api.filter import Filter

from lr_eval.config import JudgeConfig
from lr_eval.errors import UserError
from lr_eval.records import JudgeReport, Verdict

from .judge_config import DEFAULT_REASKS, build_judge, reasks_from
from .judged_samples import JudgeSpec, judge_samples
from .lm_eval_adapter import (calling_task, is_predict_only, keep_secrets_out_of_results, running_lm_eval_cli,
                              store_report, task_metadata)

log = logging.getLogger(__name__)


def _first(resp: Any) -> str:
    """take_first: lm-eval keeps a list of responses per request (repeats)."""
    if isinstance(resp, (list, tuple)):
        resp = resp[0] if resp else ""
    return "" if resp is None else str(resp)


class BatchJudgeFilter(Filter):
    """Skeleton of a filter that judges every response of a task in one batch.

    Subclasses implement :meth:`judge` (verdicts and a report); the filter skips judging in
    --predict_only runs, logs a summary, stores the report in the task's metadata and returns
    the verdicts as JSON text (lm-eval's samples writer applies ``str()`` to every filtered response).
    """

    #: The task name when no lm-eval task is found on the call stack.
    default_task: str = ""
    #: What a sample is called in the summary line ("samples", "answers").
    unit: str = "samples"
    #: ``json.dumps``'s ``default`` for the verdicts (e.g. str; None: fail on values JSON does not know).
    json_default: Callable[[Any], Any] | None = None
    #: Fields every doc needs; `lr-eval rejudge` checks saved docs against them before judging anything.
    doc_fields: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        self.options = kwargs
        super().__init__()

    def fallback_name(self) -> str:
        return self.default_task

    @abstractmethod
    def judge(self, name: str, metadata: dict[str, Any], docs: Sequence[dict[str, Any]],
              responses: list[str]) -> tuple[list[Verdict], JudgeReport]:
        """One verdict per sample and the report for the results file."""

    def log_summary(self, name: str, n: int, report: JudgeReport) -> None:
        log.warning("%s: judged %d %s with %s: %d scored, %d tampered (scored as the minimum), %d unscored, "
                    "cost %s USD", name, n, self.unit, report.model, report.samples["scored"],
                    report.tampered_items, report.unscored_items, report.total_cost())

    def apply(self, resps: Sequence[Any], docs: Sequence[dict[str, Any]]) -> list[Any]:
        responses = [_first(r) for r in resps]
        task = calling_task()
        metadata = task_metadata(task) if task is not None else {}
        if task is not None:
            keep_secrets_out_of_results(task)  # a judge key given as --metadata never reaches the results file
            if is_predict_only(task):
                return responses  # --predict_only: generation only, judged later (e.g. lr-eval rejudge)
        name = str(task.config.task) if task is not None else self.fallback_name()
        try:
            verdicts, report = self.judge(name, metadata, docs, responses)
        except UserError as e:
            if not running_lm_eval_cli():
                raise
            # Under lm-eval's command line: one line and the exit code, not lm-eval's traceback. Every judge
            # answer received is already in the cache, so a rerun (or lr-eval rejudge) continues from there.
            print(f"{name}: error: {e}", file=sys.stderr)
            raise SystemExit(e.exit_code) from None
        self.log_summary(name, len(docs), report)
        if task is not None:
            store_report(task, report.to_dict())
        # JSON text, not a dict: lm-eval's samples writer turns every filtered response into str().
        return [json.dumps(v.to_dict(), ensure_ascii=False, default=self.json_default) for v in verdicts]


class JudgeFilter(BatchJudgeFilter):
    """Judges every response of a task in one concurrent batch; subclasses name their JudgeSpec."""

    spec_class: type[JudgeSpec]
    #: Re-asks of an unparseable answer when --metadata has no ``judge_reasks``.
    default_reasks: int = DEFAULT_REASKS

    def fallback_name(self) -> str:
        return self.options.get("task", self.spec_class.__name__)

    def make_spec(self, name: str, metadata: dict[str, Any], cfg: JudgeConfig) -> JudgeSpec:
        return self.spec_class(name, metadata, cfg.max_tokens)

    def items(self, docs: Sequence[dict[str, Any]], responses: list[str]) -> list[dict[str, Any]]:
        """What the spec judges, one per response: the docs (MT-Bench: each turn's conversation)."""
        return list(docs)

    def judge(self, name: str, metadata: dict[str, Any], docs: Sequence[dict[str, Any]],
              responses: list[str]) -> tuple[list[Verdict], JudgeReport]:
        client, cfg = build_judge(name, metadata)
        return judge_samples(self.make_spec(name, metadata, cfg), client, self.items(docs, responses), responses,
                             reasks_from(metadata, self.default_reasks), judge=cfg.describe())
