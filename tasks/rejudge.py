"""``lr-eval rejudge SAMPLES.jsonl ...``: score saved lm-eval samples with a (different) judge, without regenerating.

Input: lm-eval samples files (``samples_<task>_<date>.jsonl``, written with ``--log_samples`` or
``--predict_only``) of any judged task of this package: every task whose ``filter_list`` runs a
:class:`~lr_eval.tasks.judge_filters.BatchJudgeFilter` (judged LongBench ``longreward_longbench_judged_*``,
``longreward_longbench_chat``, ``longreward_alpacaeval2``, LongReward-as-a-metric ``longreward_longqa*``,
``longreward_mtbench``).
Each record's ``doc`` holds everything the judge needs; the response is the raw generation ``resps[0][0]``
(``resps[k][0]`` for the k-th request of a doc: MT-Bench's second turn).

One generic path, so that rejudging computes exactly what lm-eval computes: the task is built by
lm-eval's ``TaskManager`` from its own YAML (filters, ``process_results``, metric aggregations, version),
with the saved docs as its dataset, and lm-eval's ``evaluate`` runs it with a model that replays the saved
responses. The task's judge filter judges every sample in one concurrent batch (cache, retries, budget,
progress); lm-eval then applies ``process_results``, the aggregations (AlpacaEval's corpus-level win rate
and LC win rate included) and the group aggregations (over the datasets present). The judge is the one
configured here (flags, ``LR_JUDGE_*``, TOML, ``--metadata judge_*``); task settings come from the
original run's results file when it sits next to the samples (``configs.<task>.metadata``), overridden
by ``--metadata``.

Output (``-o DIR``, default ``<samples dir>/rejudged-<judge model>/``), in lm-eval's format:
``results_<date>.json`` (``results``/``groups`` with ``<metric>,<filter>`` keys, ``configs.<task>.metadata.judge``
with the judge, template versions, parse counts and usage, ``versions``, ``n-samples``, ``higher_is_better``;
``config`` copied from the original run's results file when it is next to the samples) and one
``samples_<task>_<date>.jsonl`` per task with the new verdicts and metric values.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from lr_eval.config import JudgeConfig, add_judge_args
from lr_eval.jsonl import (
    InputError,
    check_dir_writable,
    check_paths,
    read_jsonl,
    write_jsonl_atomic,
    write_text_atomic,
)
from lr_eval.records import verdict_of

from .judge_config import (
    DEFAULT_REASKS,
    JUDGE_FILE_KEY,
    JUDGE_PREFIX,
    JUDGE_REASKS_KEY,
    JudgeNotConfigured,
    judge_overrides,
    no_judge_message,
)
from .judge_filters import BatchJudgeFilter

_SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[0-9.\-]+)\.jsonl$")
#: Task metadata of the original run that is not a task setting (or names the old judge).
_NOT_SETTINGS = ("judge", "config_source", "version", "predict_only", "rejudged_from")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rejudge", help="re-score saved lm-eval samples of judged tasks with another judge",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("samples", nargs="+", metavar="SAMPLES.jsonl", help="lm-eval samples files")
    p.add_argument("--task", help="task name (default: from the file name samples_<task>_<date>.jsonl)")
    p.add_argument("-o", "--output-dir", metavar="DIR", help="default: <samples dir>/rejudged-<judge model>")
    p.add_argument("--metadata", metavar="JSON", default="{}",
                   help="task settings as in lm-eval --metadata (data overrides such as longbench_chat_template, "
                        "alpacaeval_gamed, reward_embedder; judge_* keys); they override the original run's")
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


def responses_of(rec: dict[str, Any], path: Path, line: int) -> list[str]:
    """The raw generations, one per request of the doc (by its ``idx``; MT-Bench has two turns):
    resps[k][0]; else the filtered responses (texts or earlier verdicts)."""
    if rec.get("resps") is not None:  # logged: it must be lm-eval's shape, never silently replaced
        resps = rec["resps"]
        if not (isinstance(resps, list) and resps
                and all(isinstance(r, list) and r and isinstance(r[0], str) for r in resps)):
            raise InputError(path, line, "resps", "expected lm-eval's list of response lists "
                                                  "([[\"text\", ...], ...]), one non-empty list per request")
        return [r[0] for r in resps]
    filtered = rec.get("filtered_resps")
    if isinstance(filtered, list) and filtered:
        verdicts = [verdict_of(f) for f in filtered]
        got = [v.response if v is not None else f for v, f in zip(verdicts, filtered, strict=True)]
        if all(isinstance(g, str) for g in got):
            return got
    raise InputError(path, line, "resps", "no model response found (expected resps[k][0])")


def read_samples(path: Path, doc_fields: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Records with a doc, one per doc_id. Duplicates policy: a file logged with several filters repeats
    each doc, so a repeated doc_id with the same doc is skipped; with another doc it is an error. Any bad
    line refuses the file (a partial rejudge would report other numbers); each doc needs `doc_fields`."""
    out: list[dict[str, Any]] = []
    seen: dict[Any, tuple[int, str]] = {}
    for line, rec in read_jsonl(path):
        if isinstance(rec, InputError):
            raise rec
        if not isinstance(rec.get("doc"), dict):
            raise InputError(path, line, "doc", "missing or not an object")
        key = rec.get("doc_id", line)
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise InputError(path, line, "doc_id", f"expected an integer or a string, got {key!r}")
        for name, value in rec["doc"].items():
            if isinstance(value, float) and not math.isfinite(value):
                raise InputError(path, line, f"doc.{name}", f"expected a finite number, got {value}")
        doc = json.dumps(rec["doc"], sort_keys=True, default=str)
        if key in seen:
            if seen[key][1] != doc:
                raise InputError(path, line, "doc_id", f"doc_id {key!r} again (line {seen[key][0]}) with another doc")
            continue
        seen[key] = (line, doc)
        for name in doc_fields:
            if rec["doc"].get(name) is None:
                raise InputError(path, line, f"doc.{name}", "missing (the task's judge needs it)")
        rec["_responses"] = responses_of(rec, path, line)
        out.append(rec)
    return out


def _config(args: argparse.Namespace, metadata: dict[str, Any]) -> JudgeConfig:
    flags = {f.name: getattr(args, f"judge_{f.name}", None) for f in fields(JudgeConfig)}
    flags["dry_run"] = getattr(args, "dry_run", None) or None
    overrides = {**judge_overrides(metadata), **{k: v for k, v in flags.items() if v is not None}}
    return JudgeConfig.load(getattr(args, "judge_config", None) or metadata.get(JUDGE_FILE_KEY), overrides=overrides)


def _original_run(path: Path, date: str | None) -> dict[str, Any]:
    """The results file of the run that wrote the samples (it sits next to them), or {}."""
    if date is None:
        return {}
    results = path.parent / f"results_{date}.json"
    if not results.is_file():
        return {}
    try:
        data = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "__", name)


def judge_metadata(cfg: JudgeConfig, reasks: int) -> dict[str, Any]:
    """The judge as lm-eval ``--metadata judge_*`` keys: the task's filter builds exactly this judge."""
    out: dict[str, Any] = {f"{JUDGE_PREFIX}{f.name}": getattr(cfg, f.name) for f in fields(JudgeConfig)
                           if getattr(cfg, f.name) is not None}
    out[JUDGE_REASKS_KEY] = reasks
    return out


def task_metadata(original: dict[str, Any], task: str, metadata: dict[str, Any], cfg: JudgeConfig,
                  reasks: int) -> dict[str, Any]:
    """Task settings: the original run's < --metadata; the judge always the one configured here."""
    before = ((original.get("configs") or {}).get(task) or {}).get("metadata") or {}
    settings = {k: v for k, v in {**before, **metadata}.items()
                if k not in _NOT_SETTINGS and not k.startswith(JUDGE_PREFIX)}
    return {**settings, **judge_metadata(cfg, reasks)}


# ------------------------------------------------------------------------------ lm-eval glue


def _task_manager() -> Any:
    """A TaskManager over our task folder only (our tasks index in well under a second)."""
    from lm_eval.tasks import TaskManager

    from .registration import include_path

    return TaskManager(include_path=include_path(), include_defaults=False)


def _yaml(entry: Any) -> dict[str, Any]:
    """The full config of an index entry, includes merged and ``!function`` resolved (imports the family)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(entry.yaml_path, resolve_func=True)


def judge_filters(config: dict[str, Any]) -> list[type[BatchJudgeFilter]]:
    """The judge filters a task config's ``filter_list`` runs."""
    from lm_eval.api.registry import filter_registry

    found = []
    for pipeline in config.get("filter_list") or []:
        for step in pipeline.get("filter") or []:
            fn = step.get("function")
            cls = filter_registry.get(fn) if isinstance(fn, str) and fn in filter_registry else fn
            if isinstance(cls, type) and issubclass(cls, BatchJudgeFilter):
                found.append(cls)
    return found


def judged_task_config(tm: Any, task: str) -> dict[str, Any]:
    """The YAML config of a judged task; ValueError for an unknown or unjudged task."""
    from lm_eval.tasks._index import Kind

    entry = tm.task_index.get(task)
    if entry is None or entry.kind not in (Kind.TASK, Kind.PY_TASK) or entry.yaml_path is None:
        raise ValueError(f"unknown task {task!r}: rejudge takes samples of this package's judged tasks "
                         "(longreward_longbench_judged_*, longreward_longbench_chat, longreward_alpacaeval2, "
                         "longreward_longqa*, longreward_mtbench); pass --task NAME if the file name does not tell")
    config = _yaml(entry)
    if not judge_filters(config):
        raise ValueError(f"{task} is not judged (no judge filter in its filter_list): nothing to rejudge")
    return config


def _replay_dataset(docs: list[dict[str, Any]], config: dict[str, Any]) -> Any:
    """custom_dataset stand-in: the saved docs, under every evaluation split the task names."""
    from datasets import Dataset, DatasetDict

    splits = {config.get(k) for k in ("test_split", "validation_split")} - {None} or {"test"}

    def load(**_: Any) -> DatasetDict:
        return DatasetDict({split: Dataset.from_list(docs) for split in splits})

    return load


def _groups(tm: Any, present: dict[str, Any]) -> dict[str, Any]:
    """lm-eval Groups of our index, each holding only the tasks (and subgroups) present here."""
    from lm_eval.api.group import Group
    from lm_eval.config.group import GroupConfig
    from lm_eval.tasks._index import Kind

    group_fields = {f.name for f in fields(GroupConfig)}
    built: dict[str, Any] = {}

    def build(name: str) -> Any | None:
        if name in built:
            return built[name]
        raw = _yaml(tm.task_index[name])
        group = Group.from_config(GroupConfig(**{**{k: v for k, v in raw.items() if k in group_fields},
                                                 "group": name}))
        listed = raw.get("task")
        members = listed if isinstance(listed, list) else []
        for member in members:
            child_name = member if isinstance(member, str) else member.get("task") or member.get("group")
            entry = tm.task_index.get(child_name)
            child = present.get(child_name)
            if child is None and entry is not None and entry.kind == Kind.GROUP:
                child = build(child_name)
            if child is not None:
                group.add(child)
        built[name] = group if len(group) else None
        return built[name]

    for name, entry in tm.task_index.items():
        if entry.kind == Kind.GROUP and entry.yaml_path is not None:
            build(name)
    return {name: g for name, g in built.items() if g is not None}


def _replay_lm(responses: dict[str, list[list[str]]]) -> Any:
    """An lm-eval model that answers every request with the saved response of its doc and ``idx``."""
    from lm_eval.api.model import LM

    class ReplayLM(LM):
        def generate_until(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[str]:
            return [responses[r.task_name][r.doc_id][r.idx] for r in requests]

        def loglikelihood(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            raise ValueError("rejudge replays generations only")

        def loglikelihood_rolling(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[float]:
            raise ValueError("rejudge replays generations only")

    return ReplayLM()


def evaluate_saved(tasks: dict[str, tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]],
                   tm: Any = None) -> dict[str, Any]:
    """lm-eval's evaluate on saved samples: {task: (YAML config, records, task metadata)} -> lm-eval results.

    The records' docs are the dataset, their responses the generations; everything after generation
    (judge filter, process_results, aggregations, groups) is lm-eval running the task's own code.
    """
    from lm_eval.evaluator import evaluate

    tm = tm or _task_manager()
    built: dict[str, Any] = {}
    for name, (config, records, metadata) in tasks.items():
        spec = {**config, "task": name, "custom_dataset": _replay_dataset([r["doc"] for r in records], config),
                "metadata": {**(config.get("metadata") or {}), **metadata}}
        built.update(tm.load([spec])["tasks"])
    groups = _groups(tm, built)
    lm = _replay_lm({name: [r["_responses"] for r in records] for name, (_, records, _) in tasks.items()})
    res = evaluate(lm, {"tasks": built, "groups": groups, "group_map": {g.name: g.child_names
                                                                         for g in groups.values()}},
                   log_samples=True)
    assert res is not None  # rank 0
    return dict(res)


def new_sample(rec: dict[str, Any], logged: dict[str, Any]) -> dict[str, Any]:
    """The original samples-log record with lm-eval's new filtered response, filter and metric values."""
    old_metrics = rec.get("metrics") or []
    out = {k: v for k, v in rec.items() if k != "_responses" and k not in old_metrics}
    for key in ("filtered_resps", "filter", "metrics"):
        out[key] = logged[key]
    out.update({m: logged[m] for m in logged["metrics"] if m in logged})
    return out


def _clean_config(dumped: dict[str, Any], yaml_config: dict[str, Any], yaml_path: Any,
                  source: Path) -> dict[str, Any]:
    """The task config lm-eval dumped, with the task's own loader and YAML named and the judge settings
    left out (the judge is described by ``metadata.judge``)."""
    out = dict(dumped)
    loader = yaml_config.get("custom_dataset")
    if loader is not None:
        out["custom_dataset"] = f"{getattr(loader, '__module__', '')}.{getattr(loader, '__qualname__', loader)}"
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if not k.startswith(JUDGE_PREFIX)}
    meta["config_source"] = str(yaml_path)
    meta["rejudged_from"] = str(source)
    out["metadata"] = meta
    return out


def rejudge(paths: list[Path], cfg: JudgeConfig, metadata: dict[str, Any], task: str | None = None,
            output_dir: Path | None = None, reasks: int = DEFAULT_REASKS) -> tuple[Path, dict[str, Any]]:
    """Re-score the samples files; returns the results file written and its content."""
    if not cfg.configured:
        raise JudgeNotConfigured(no_judge_message("lr-eval rejudge"))
    date = datetime.now().isoformat().replace(":", "-")
    out_dir = output_dir or paths[0].parent / f"rejudged-{_sanitize(cfg.model or cfg.backend)}"
    tm = _task_manager()
    jobs: dict[str, tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]] = {}
    sources: dict[str, tuple[Any, Path]] = {}
    counts: dict[str, dict[str, Any]] = {}  # the original run's n-samples (its dataset size, with --limit)
    original: dict[str, Any] = {}
    for path in paths:
        name, sample_date = task_of(path, task)
        if name in jobs:
            raise ValueError(f"{path}: task {name} given twice")
        config = judged_task_config(tm, name)
        fields_needed = tuple(f for cls in judge_filters(config) for f in cls.doc_fields)
        records = sorted(read_samples(path, fields_needed),
                         key=lambda r: (not isinstance(r.get("doc_id"), int), r.get("doc_id")))
        run = _original_run(path, sample_date)
        original = original or run
        jobs[name] = (config, records, task_metadata(run, name, metadata, cfg, reasks))
        sources[name] = (tm.task_index[name].yaml_path, path)
        counts[name] = (run.get("n-samples") or {}).get(name) or {}

    # before any request: the output folder writable; the judge cache writable and none of the inputs
    if not cfg.dry_run:
        check_dir_writable(out_dir)
    check_paths(cfg.written_paths(), {**{f"samples file {p}": p for p in paths}, **cfg.read_paths()})
    res = evaluate_saved(jobs, tm)
    samples = res.pop("samples")
    res["configs"] = {name: _clean_config(conf, jobs[name][0], *sources[name]) if name in jobs else conf
                      for name, conf in res["configs"].items()}
    for name, count in counts.items():
        if isinstance(count.get("original"), int) and name in res.get("n-samples", {}):
            res["n-samples"][name]["original"] = count["original"]
    payload: dict[str, Any] = {
        **res,
        "config": {**(original.get("config") or {}),
                   "rejudge": {"judge": cfg.describe(), "judge_model": cfg.model,
                               "source_samples": [str(p) for p in paths]}},
        "date": datetime.now().timestamp(),
    }
    if cfg.dry_run:  # estimates only: nothing was judged, nothing is written
        return out_dir, payload
    for key in ("model_name", "model_name_sanitized"):
        if key in original:
            payload[key] = original[key]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (_, records, _) in jobs.items():
        logged = {s["doc_id"]: s for s in reversed(samples[name])}  # by position; the first filter's
        write_jsonl_atomic(out_dir / f"samples_{name}_{date}.jsonl",
                           [new_sample(r, logged[i]) for i, r in enumerate(records)])
    from lm_eval.utils import handle_non_serializable

    results_path = out_dir / f"results_{date}.json"
    write_text_atomic(results_path, json.dumps(payload, indent=2, ensure_ascii=False,
                                               default=handle_non_serializable))
    return results_path, payload


def _summary(name: str, res: dict[str, Any]) -> str:
    """One line per task or group: its metric values (no stderrs) and sample count."""
    values = []
    for key, value in res.items():
        if "," not in key or "_stderr," in key:
            continue
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        values.append(f"{key.split(',')[0]} {shown}")
    n = res.get("sample_len")
    return f"{name}: {', '.join(values) or 'no metrics'}" + (f" ({n} samples)" if n is not None else "")


def main(args: argparse.Namespace) -> int:
    try:
        metadata = json.loads(args.metadata or "{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"--metadata is not valid JSON: {e}") from None
    if not isinstance(metadata, dict):
        raise ValueError("--metadata must be a JSON object")
    cfg = _config(args, metadata)
    reasks = args.reasks if args.reasks is not None else int(metadata.get(JUDGE_REASKS_KEY, DEFAULT_REASKS))
    path, payload = rejudge([Path(p) for p in args.samples], cfg, metadata, args.task,
                            Path(args.output_dir) if args.output_dir else None, reasks)
    if cfg.dry_run:
        for name, conf in payload["configs"].items():
            usage = conf["metadata"]["judge"]["usage"]
            print(f"{name}: would send {usage.get('estimated_calls', 0)} judge calls, about "
                  f"{usage.get('estimated_input_tokens', 0)} input / {usage.get('estimated_output_tokens', 0)} "
                  f"output tokens, cost {usage.get('estimated_cost_usd')} USD")
        return 0
    for name, res in {**payload["results"], **payload.get("groups", {})}.items():
        print(_summary(name, res))
    print(f"wrote {path}", file=sys.stderr)
    return 0
