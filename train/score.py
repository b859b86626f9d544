"""`lr-train score`: LongReward on every sampled group of a samples file, over the engine of
``lr_eval.reward.engine`` (streaming, resumable by content, in input order).

Output lines ``{"id", "responses_sha", "judge", "results": [one ResponseScore per response], "input_key"}``;
a rerun reuses the groups whose prompt, responses and scoring options are unchanged (``input_key``), and
the judge cache makes any repeated call free. A record of the sample step's own errors (failed sampling)
is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lr_eval.config import JudgeConfig
from lr_eval.jsonl import InputError, read_jsonl
from lr_eval.progress import console as err_console
from lr_eval.report import print_usage
from lr_eval.reward.engine import (
    ScoreRun,
    build_scorer,
    check_score_paths,
    group_key,
    iter_items,
    result_options,
    result_record,
    score_groups_file,
)
from lr_eval.reward.records import ResponseScore
from lr_eval.reward.scorer import LongRewardScorer
from lr_eval.reward.settings import RewardConfig

from .pairs import responses_sha


def iter_groups(path: str | Path, skipped: list[int]) -> Iterator[tuple[int, dict[str, Any] | None,
                                                                       dict[str, Any] | None]]:
    """Stream the sampled prompts of a samples file as (line, group, None) or (line, None, error record).
    A record of the sample step's own errors (failed sampling) is skipped and its line added to `skipped`."""

    def samples() -> Iterator[tuple[int, dict[str, Any] | InputError]]:
        for n, rec in read_jsonl(path):
            if isinstance(rec, dict) and "error" in rec:
                skipped.append(n)
            else:
                yield n, rec

    return iter_items(path, samples())


def score_sample_groups(scorer: LongRewardScorer, samples: str | Path, output: Path | None, options: dict[str, Any],
                        audit: bool, in_flight: int) -> ScoreRun:
    """Score a samples file into `output` (None: dry run) with a built scorer, streaming and resumable by
    content (`options`: what else changes a result, :func:`~lr_eval.reward.engine.result_options`)."""
    skipped: list[int] = []

    def record(g: dict[str, Any], scores: list[ResponseScore]) -> dict[str, Any]:
        return {"id": g["id"], "responses_sha": responses_sha(g["responses"]), "judge": scorer.client.model,
                **{k: v for k, v in result_record(g, scores, audit).items() if k != "id"}}

    run = score_groups_file(scorer, lambda: iter_groups(samples, skipped), output,
                            lambda g: group_key(g, options), record, in_flight, keep_errors=False)
    if skipped:
        err_console.print(f"{len(set(skipped))} sample records without responses (failed sampling) are skipped")
    return run


def score_samples(settings: RewardConfig, judge: JudgeConfig, input_path: str | Path, output: str | Path,
                  audit: bool = True) -> int:
    """Score every sampled group of `input_path` into `output`; returns the number of prompts left unscored
    or bad lines (0: all done). A fatal judge error or the budget is raised after the output is written."""
    check_score_paths(input_path, output, judge, settings.embed_cache)
    scorer = build_scorer(settings, judge)
    run = score_sample_groups(scorer, input_path, None if judge.dry_run else Path(output),
                              result_options(judge, scorer, audit), audit, settings.groups_in_flight)
    if judge.dry_run:
        return 0
    print_usage(scorer.client.meter)
    if run.stop is not None:  # one line from lr-train's error handler; finished prompts are written
        raise run.stop
    if run.failed:
        err_console.print(f"[red]{run.failed} prompts not scored or bad lines")
    return run.failed
