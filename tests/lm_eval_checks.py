"""Shared by the lm-eval end-to-end and rejudge tests: the AlpacaEval fixture settings, an in-process lm-eval
run on the embedded model, and the check that rejudging a run's samples reproduces the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import embedded_model_or_skip

FIX = Path(__file__).resolve().parent / "fixtures"
AE_FIX = FIX / "alpacaeval2"
# Task metadata pointing AlpacaEval 2 at the fixture data (both orders, LC inputs).
AE_META = {"alpacaeval_reference_outputs": str(AE_FIX / "reference_outputs.json"),
           "alpacaeval_annotator_template": str(AE_FIX / "annotator_template.txt"),
           "alpacaeval_gamed": str(AE_FIX / "df_gamed.csv"),
           "alpacaeval_both_orders": True}


embedded_model = embedded_model_or_skip  # the one "embedded model or skip" (conftest.py), for helpers and fixtures


def run_lm_eval(task_manager: Any, tasks: list[str], out: Path, **kw: Any) -> dict[str, Any]:
    """lm-eval's run path in-process on the embedded model with its chat template (simple_evaluate +
    EvaluationTracker write the CLI's files); `kw` are simple_evaluate's (limit, samples, gen_kwargs...)."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker

    tracker = EvaluationTracker(output_path=str(out))
    res = simple_evaluate(model="hf", model_args=f"pretrained={embedded_model()},dtype=float32", device="cpu",
                          tasks=tasks, task_manager=task_manager, log_samples=True, evaluation_tracker=tracker,
                          apply_chat_template=True, **kw)
    samples = res.pop("samples")
    tracker.save_results_aggregated(results=res, samples=samples)
    for task in res["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    [results_file] = out.rglob("results_*.json")
    return json.loads(results_file.read_text())


def logged_samples(out: Path, task: str) -> list[dict[str, Any]]:
    """A task's samples log, by doc_id."""
    [path] = out.rglob(f"samples_{task}_2*.jsonl")  # _<date>: not the longer task names
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["doc_id"])


def assert_rejudge_matches_lm_eval(out: Path, rj: Path) -> dict[str, Any]:
    """`lr-eval rejudge` of an lm-eval run's samples, by the same judge (env; task settings from the run's
    results file), gives lm-eval's very results: every metric, stderr and sample count of every task."""
    from lr_eval.cli import main as lr_eval_main

    [results_file] = out.rglob("results_*.json")
    samples = sorted(results_file.parent.glob("samples_*.jsonl"))
    assert lr_eval_main(["rejudge", *map(str, samples), "--cache", "none", "-o", str(rj)]) == 0
    original = json.loads(results_file.read_text())
    again = json.loads(next(rj.glob("results_*.json")).read_text())
    for kind in ("results", "groups"):  # lm-eval's "results" holds the groups too
        for name, values in (original.get(kind) or {}).items():
            flat = {k: v for k, v in values.items() if not isinstance(v, dict)}
            assert {k: v for k, v in again[kind][name].items() if k in flat} == pytest.approx(flat, nan_ok=True)
            assert again[kind][name].keys() == values.keys() and again["higher_is_better"][name] == \
                original["higher_is_better"][name]
            assert {k: v for k, v in again[kind][name].items() if k not in flat} == \
                {k: v for k, v in values.items() if k not in flat}
    assert again["n-samples"] == original["n-samples"]
    return again
