"""``lr-eval rejudge SAMPLES.jsonl ...``: score saved lm-eval samples with a (different) judge, without regenerating.

Input: lm-eval samples files (``samples_<task>_<date>.jsonl``, written with ``--log_samples`` or
``--predict_only``) of judged tasks (``longreward_longbench_judged_*``, ``longreward_longbench_chat``).
Each record's ``doc`` holds everything the judge needs (question, references, graded examples);
the response is the raw generation ``resps[0][0]``. Every judge call of a file goes out in one
concurrent batch through the judge client (cache, retries, budget, progress).

Output (``-o DIR``, default ``<samples dir>/rejudged-<judge model>/``), in lm-eval's format:
``results_<date>.json`` (``results``/``groups`` with ``score,judge``, ``judge_unscored,judge`` and
``judge_cost_usd,judge``; ``configs.<task>.metadata.judge`` with the judge, template versions,
parse counts and usage; ``config`` copied from the original run's results file when it is next to
the samples) and one ``samples_<task>_<date>.jsonl`` per task with the new verdicts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from lr_eval.config import JudgeConfig, add_judge_args, build_client
from lr_eval.jsonl import InputError, read_jsonl, write_jsonl_atomic

from .judging import (
    DEFAULT_REASKS,
    JUDGE_FILE_KEY,
    JudgeNotConfigured,
    judge_overrides,
    judge_samples,
    load_verdict,
    mean_stderr,
    no_judge_message,
    spec_for_task,
    total,
)

FILTER = "judge"
_SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[0-9.\-]+)\.jsonl$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rejudge", help="re-score saved lm-eval samples of judged tasks with another judge",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("samples", nargs="+", metavar="SAMPLES.jsonl", help="lm-eval samples files")
    p.add_argument("--task", help="task name (default: from the file name samples_<task>_<date>.jsonl)")
    p.add_argument("-o", "--output-dir", metavar="DIR", help="default: <samples dir>/rejudged-<judge model>")
    p.add_argument("--metadata", metavar="JSON", default="{}",
                   help="task settings as in lm-eval --metadata (data overrides such as longbench_chat_template; "
                        "judge_* keys)")
    p.add_argument("--reasks", type=int, default=None, help=f"re-asks of an unparseable verdict (default "
                                                            f"{DEFAULT_REASKS})")
    add_judge_args(p)
    p.set_defaults(func=main)


def task_of(path: Path, given: str | None) -> tuple[str, str | None]:
    """(task, date) from `--task` or the samples file name."""
    m = _SAMPLES_NAME.match(path.name)
    if given:
        return given, m.group("date") if m else None
    if not m:
        raise ValueError(f"{path}: cannot tell the task from the file name; pass --task NAME")
    return m.group("task"), m.group("date")


def response_of(rec: dict[str, Any], path: Path, line: int) -> str:
    """The raw generation: resps[0][0]; else the first filtered response (text or an earlier verdict)."""
    resps = rec.get("resps")
    if isinstance(resps, list) and resps:
        first = resps[0]
        if isinstance(first, list) and first and isinstance(first[0], str):
            return first[0]
        if isinstance(first, str):
            return first
    filtered = rec.get("filtered_resps")
    if isinstance(filtered, list) and filtered:
        verdict = load_verdict(filtered[0])
        if verdict is not None and isinstance(verdict["response"], str):
            return verdict["response"]
        if isinstance(filtered[0], str):
            return filtered[0]
    raise InputError(path, line, "resps", "no model response found (expected resps[0][0])")


def read_samples(path: Path) -> list[dict[str, Any]]:
    """Records with a doc, one per doc_id (a file logged with several filters repeats each doc)."""
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for line, rec in read_jsonl(path):
        if isinstance(rec, InputError):
            raise rec
        if not isinstance(rec.get("doc"), dict):
            raise InputError(path, line, "doc", "missing or not an object")
        key = rec.get("doc_id", line)
        if key in seen:
            continue
        seen.add(key)
        rec["_response"] = response_of(rec, path, line)
        out.append(rec)
    if not out:
        raise ValueError(f"{path}: no samples")
    return out


def _config(args: argparse.Namespace, metadata: dict[str, Any]) -> JudgeConfig:
    flags = {f.name: getattr(args, f"judge_{f.name}", None) for f in fields(JudgeConfig)}
    flags["dry_run"] = getattr(args, "dry_run", None) or None
    overrides = {**judge_overrides(metadata), **{k: v for k, v in flags.items() if v is not None}}
    return JudgeConfig.load(getattr(args, "judge_config", None) or metadata.get(JUDGE_FILE_KEY), overrides=overrides)


def _original_config(path: Path, date: str | None) -> dict[str, Any] | None:
    """The `config` of the run that wrote the samples (its results file sits next to them)."""
    if date is None:
        return None
    results = path.parent / f"results_{date}.json"
    if not results.is_file():
        return None
    try:
        data = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return {k: data.get(k) for k in ("config", "model_name", "model_name_sanitized") if k in data}


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "__", name)


def task_result(task: str, verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    """The `results` entry lm-eval would write for these verdicts (same keys and aggregations)."""
    scores = [float(v["score"]) for v in verdicts if v["score"] is not None]
    unscored = [0.0 if v["score"] is not None else 1.0 for v in verdicts]
    out: dict[str, Any] = {"name": task, "alias": task, "sample_len": len(verdicts)}
    out[f"judge_unscored,{FILTER}"] = total(unscored)
    out[f"judge_unscored_stderr,{FILTER}"] = "N/A"
    if scores:
        out[f"score,{FILTER}"] = sum(scores) / len(scores)
        out[f"score_stderr,{FILTER}"] = mean_stderr(scores)
    costs = [v["cost_usd"] for v in verdicts if v.get("cost_usd") is not None]
    if costs:
        out[f"judge_cost_usd,{FILTER}"] = total(costs)
        out[f"judge_cost_usd_stderr,{FILTER}"] = "N/A"
    return out


def group_results(results: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Judged-LongBench category and overall means (unweighted over the datasets present)."""
    from .longbench_judged import JUDGED_CATEGORIES, PREFIX

    groups: dict[str, Any] = {}
    members: dict[str, list[str]] = {}
    categories = {f"{PREFIX}_{c}": [f"{PREFIX}_{d}" for d in names] for c, names in JUDGED_CATEGORIES.items()}
    categories[PREFIX] = [t for names in categories.values() for t in names]
    key = f"score,{FILTER}"
    for group, tasks in categories.items():
        present = [t for t in tasks if t in results and key in results[t]]
        if not present:
            continue
        groups[group] = {"name": group, "alias": group, "sample_len": sum(results[t]["sample_len"] for t in present),
                         key: sum(results[t][key] for t in present) / len(present),
                         f"score_stderr,{FILTER}": "N/A"}
        members[group] = present
    return groups, members


def new_sample(rec: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """The samples-log record with the new verdict in place of the old filtered response and metrics."""
    out = {k: v for k, v in rec.items() if k != "_response" and k not in (rec.get("metrics") or [])}
    out["filtered_resps"] = [json.dumps(verdict, ensure_ascii=False)]
    out["filter"] = FILTER
    metrics: dict[str, float] = {"judge_unscored": 0.0 if verdict["score"] is not None else 1.0}
    if verdict["score"] is not None:
        metrics["score"] = float(verdict["score"])
    if verdict.get("cost_usd") is not None:
        metrics["judge_cost_usd"] = float(verdict["cost_usd"])
    out["metrics"] = list(metrics)
    out.update(metrics)
    return out


def rejudge(paths: list[Path], cfg: JudgeConfig, metadata: dict[str, Any], task: str | None = None,
            output_dir: Path | None = None, reasks: int = DEFAULT_REASKS,
            show_progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Re-score the samples files; returns the results file written and its content."""
    if not cfg.configured:
        raise JudgeNotConfigured(no_judge_message("lr-eval rejudge"))
    date = datetime.now().isoformat().replace(":", "-")
    out_dir = output_dir or paths[0].parent / f"rejudged-{_sanitize(cfg.model or cfg.backend)}"
    results: dict[str, dict[str, Any]] = {}
    configs: dict[str, Any] = {}
    samples_out: dict[str, list[dict[str, Any]]] = {}
    original: dict[str, Any] | None = None
    for path in paths:
        name, sample_date = task_of(path, task)
        if name in results:
            raise ValueError(f"{path}: task {name} given twice")
        records = read_samples(path)
        original = original or _original_config(path, sample_date)
        client = build_client(cfg, show_progress=show_progress)
        spec = spec_for_task(name, metadata, cfg.max_tokens)
        verdicts, report = judge_samples(spec, client, [r["doc"] for r in records],
                                         [r["_response"] for r in records], reasks, desc=f"rejudging {name}")
        report["judge"] = cfg.describe()
        results[name] = task_result(name, verdicts)
        configs[name] = {"task": name, "metadata": {"judge": report, "rejudged_from": str(path)}}
        samples_out[name] = [new_sample(r, v) for r, v in zip(records, verdicts, strict=True)]
    groups, members = group_results(results)
    payload: dict[str, Any] = {
        "results": {**results, **groups},
        "groups": groups,
        "group_subtasks": {**members, **{t: [] for t in results}},
        "configs": configs,
        "versions": {t: 1.0 for t in results},
        "n-shot": {t: 0 for t in results},
        "higher_is_better": {t: {"score": True, "judge_unscored": False, "judge_cost_usd": False} for t in results},
        "n-samples": {t: {"original": r["sample_len"], "effective": r["sample_len"]} for t, r in results.items()},
        "config": {**((original or {}).get("config") or {}),
                   "rejudge": {"judge": cfg.describe(), "judge_model": cfg.model,
                               "source_samples": [str(p) for p in paths]}},
        "date": datetime.now().timestamp(),
    }
    if cfg.dry_run:  # estimates only: nothing was judged, nothing is written
        return out_dir, payload
    for key in ("model_name", "model_name_sanitized"):
        if original and key in original:
            payload[key] = original[key]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, recs in samples_out.items():
        write_jsonl_atomic(out_dir / f"samples_{name}_{date}.jsonl", recs)
    results_path = out_dir / f"results_{date}.json"
    tmp = results_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(results_path)
    return results_path, payload


def main(args: argparse.Namespace) -> int:
    try:
        metadata = json.loads(args.metadata or "{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"--metadata is not valid JSON: {e}") from None
    if not isinstance(metadata, dict):
        raise ValueError("--metadata must be a JSON object")
    cfg = _config(args, metadata)
    reasks = args.reasks if args.reasks is not None else int(metadata.get("judge_reasks", DEFAULT_REASKS))
    path, payload = rejudge([Path(p) for p in args.samples], cfg, metadata, args.task,
                            Path(args.output_dir) if args.output_dir else None, reasks)
    if cfg.dry_run:
        for name, conf in payload["configs"].items():
            usage = conf["metadata"]["judge"]["usage"]
            print(f"{name}: would send {usage.get('estimated_calls', 0)} judge calls, about "
                  f"{usage.get('estimated_input_tokens', 0)} input / {usage.get('estimated_output_tokens', 0)} "
                  f"output tokens, cost {usage.get('estimated_cost_usd')} USD")
        return 0
    for name, res in payload["results"].items():
        score = res.get(f"score,{FILTER}")
        unscored = res.get(f"judge_unscored,{FILTER}")
        shown = "n/a" if score is None else f"{score:.2f}"
        extra = "" if unscored is None else f", {int(unscored)} unscored"
        print(f"{name}: score {shown} ({res['sample_len']} samples{extra})")
    print(f"wrote {path}", file=sys.stderr)
    return 0
