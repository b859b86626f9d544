"""Read lm-eval 0.4.13 output folders into `Run` objects (results JSON, samples JSONL, judge sidecars).

We read lm-eval's files rather than importing task code, so a leaderboard can be
built from anyone's output folder, and tolerate what the tasks add around the
standard format (judge metadata as metric keys, task-config metadata or sidecar
JSON). What is read, exactly:

* ``results_<date>.json`` (any depth below the given path; one run per folder; several
  results files in one folder are merged, the newest file winning per task):
  ``results`` (``"<metric>,<filter>"`` keys, filter ``none`` preferred), ``groups``,
  ``group_subtasks``, ``configs`` (``metadata``: judge keys), ``n-samples``,
  ``higher_is_better``, ``config`` (model, model_args, limit, gen_kwargs, seeds), ``model_name``,
  ``date``, ``lm_eval_version``, ``chat_template_sha``, ``system_instruction``, ``total_evaluation_time_seconds``.
* ``samples_<task>_<date>.jsonl`` (when ``--log_samples`` was used): ``doc_id``, ``doc_hash``,
  ``filter``, per-sample metric values (top-level keys named in ``metrics``; a missing or null
  score = not scored), the doc's length (``doc.length`` / ``context_length`` / ``input_length``,
  else a ``<metric>_0-4k``-style key) for length buckets, and the first sample's JSON verdict in
  ``filtered_resps`` (``judge.model``, ``judge.template``, ``audit.templates``).
* judge metadata (interpreted in board.py): ``configs.<task>.metadata`` (``judge_model`` and other
  ``judge_*``/``*template*`` keys, and the ``judge`` report our judged tasks write: model,
  template id/version, ``samples.judged``/``unscored``, ``cost_usd``/``usage.cost_usd``), metrics
  ``judge_unscored``, ``<metric>_unscored``, ``judge_cost_usd``, and sidecars: any other ``*.json``
  in the run folder whose name contains ``judge``, ``longreward`` or ``lr_eval`` (e.g.
  ``judge_summary.json``), kept whole and searched for model, template versions, unscored, cost.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lr_eval.jsonl import InputError, read_json, read_jsonl
from lr_eval.records import verdict_of

RESULTS_RE = re.compile(r"^results_(?P<date>.+)\.json$")
SAMPLES_RE = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[0-9.\-]+)\.jsonl$")
SIDECAR_HINTS = ("judge", "longreward", "lr_eval")
LENGTH_KEYS = ("length", "context_length", "input_length", "num_tokens", "context_tokens")


@dataclass
class Sample:
    """One logged document of one task: its pairing keys, metric values and context length."""

    doc_id: Any
    doc_hash: str | None
    values: dict[str, float | None]
    length: float | None = None
    bucket: str | None = None  # a LongBench-E bucket named by a per-sample metric key such as ``score_0-4k``

    def key(self, use_hash: bool) -> tuple:
        return (self.doc_hash, self.doc_id) if use_hash else (self.doc_id,)


@dataclass
class TaskResult:
    """One task (or group) of one run, with the metrics of one lm-eval filter."""

    name: str
    metrics: dict[str, float | None]
    stderr: dict[str, float | None]
    filter: str = "none"
    n: int | None = None
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    version: Any = None
    samples: list[Sample] | None = None
    results_file: str = ""
    samples_file: str | None = None
    sample_judge: dict[str, Any] = field(default_factory=dict)  # judge identity found in a logged verdict

    @property
    def metadata(self) -> dict[str, Any]:
        md = self.config.get("metadata") if isinstance(self.config, dict) else None
        return md if isinstance(md, dict) else {}

    def aggregation(self, metric: str) -> str:
        """How lm-eval aggregated `metric` ("mean", or the source of a custom function), "" if unknown."""
        for m in self.config.get("metric_list") or []:
            if isinstance(m, dict) and m.get("metric") == metric:
                return str(m.get("aggregation", ""))
        return ""

    def aggregated_by_sum(self, metric: str) -> bool:
        agg = self.aggregation(metric)
        return agg != "mean" and bool(re.search(r"\bsum\(|def (total|sum)", agg))


@dataclass
class Run:
    """One evaluated model: everything lm-eval wrote into one output folder."""

    path: Path
    label: str
    model_name: str
    config: dict[str, Any]
    tasks: dict[str, TaskResult]
    groups: dict[str, TaskResult]
    group_subtasks: dict[str, list[str]]
    info: dict[str, Any]
    results_files: list[str]
    sidecars: dict[str, Any]

    @property
    def model_args(self) -> dict[str, Any]:
        ma = self.config.get("model_args")
        if isinstance(ma, dict):
            return ma
        if isinstance(ma, str):  # older lm-eval: "k=v,k=v"
            return dict(kv.split("=", 1) for kv in ma.split(",") if "=" in kv)
        return {}

    @property
    def limit(self) -> Any:
        return self.config.get("limit")


def _num(v: Any) -> float | None:
    """A finite float, or None (lm-eval writes "N/A" for missing stderr; unscored samples are null/NaN)."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    return None


def split_metrics(entry: dict[str, Any]) -> tuple[str, dict[str, float | None], dict[str, float | None]]:
    """Pick one filter of a ``results[task]`` entry ("none" if present) → (filter, metrics, stderrs)."""
    by_filter: dict[str, dict[str, Any]] = {}
    for key, value in entry.items():
        if "," not in key:
            continue
        metric, filt = key.split(",", 1)
        by_filter.setdefault(filt, {})[metric] = value
    if not by_filter:
        return "none", {}, {}
    filt = "none" if "none" in by_filter else next(iter(by_filter))
    metrics: dict[str, float | None] = {}
    stderr: dict[str, float | None] = {}
    for metric, value in by_filter[filt].items():
        if metric.endswith("_stderr"):
            stderr[metric[: -len("_stderr")]] = _num(value)
        elif isinstance(value, (int, float)) or value is None:
            metrics[metric] = _num(value)
    return filt, metrics, stderr


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float))


def _is_numbers(v: Any) -> bool:
    return isinstance(v, list) and all(_is_number(x) and not isinstance(x, bool) for x in v)


def _item_value(v: Any) -> float | None:
    if isinstance(v, list):
        xs = [f for x in v if (f := _num(x)) is not None]
        return sum(xs) / len(xs) if xs else None
    return _num(v)


def _doc_length(doc: Any) -> float | None:
    if not isinstance(doc, dict):
        return None
    for k in LENGTH_KEYS:
        v = _num(doc.get(k))
        if v is not None:
            return v
    return None


BUCKET_KEY_RE = re.compile(r"_(0-4k|4-8k|8k\+)$")


def read_samples(path: Path, filt: str = "none") -> tuple[list[Sample], dict[str, Any]]:
    """Per-sample metric values of one samples JSONL (lines of other filters skipped), and the judge
    identity of the first logged verdict (``filtered_resps`` holding a JSON verdict with ``judge`` or
    ``audit.templates``, as our judged tasks log them)."""
    out: list[Sample] = []
    judge: dict[str, Any] = {}
    seen: set[str] = set()
    for n, row in read_jsonl(path):  # an empty samples file is refused: it would pair nothing, silently
        if isinstance(row, InputError):
            raise row  # a partial samples file would give wrong intervals: refused
        if row.get("filter", filt) != filt:
            continue
        doc = json.dumps(row.get("doc_id"))
        if doc in seen:
            raise InputError(path, n, "doc_id", f"duplicate doc_id {row.get('doc_id')!r} for filter {filt!r}")
        seen.add(doc)
        names = row.get("metrics") or [k for k in row if k not in _SAMPLE_FIELDS]
        # null/NaN = unscored (kept as None); a metric absent from a sample was not scored there either;
        # a list of numbers is an item's several scored judgments (MT-Bench's turns): the item's value is
        # their mean (None when empty); dicts, strings and other lists (inputs of corpus-level metrics) are
        # not per-item scores and are skipped
        values = {m: _item_value(row.get(m)) for m in names
                  if row.get(m) is None or _is_number(row.get(m)) or _is_numbers(row.get(m))}
        for m in row.get("metrics") or []:  # a score the row names as a metric must be one
            _check_score(row.get(m), path, n, m)
        bucket = next((b[1] for m in values if (b := BUCKET_KEY_RE.search(m))), None)
        out.append(Sample(doc_id=row.get("doc_id"), doc_hash=row.get("doc_hash"), values=values,
                          length=_doc_length(row.get("doc")), bucket=bucket))
        if not judge:
            judge = _verdict_judge(row.get("filtered_resps"))
    return out, judge


def _check_score(value: Any, path: Path, line: int | None, field: str) -> None:
    """A metric value is a number, null (unscored) or NaN (unscored, as lm-eval writes it); a string or an
    infinity is a broken file, refused rather than shown as unscored or left out."""
    if isinstance(value, str):
        raise InputError(path, line, field, f"expected a number (or null for unscored), got the string {value!r}")
    if isinstance(value, float) and math.isinf(value):
        raise InputError(path, line, field, f"expected a finite number, got {value}")


def _verdict_judge(filtered: Any) -> dict[str, Any]:
    """The judge of a sample's verdict (:class:`lr_eval.records.Verdict`): model, template, and LongReward's
    templates from its audit trail."""
    first = filtered[0] if isinstance(filtered, list) and filtered else filtered
    verdict = verdict_of(first)
    if verdict is None:
        return {}
    out: dict[str, Any] = dict(verdict.judge)
    audit = verdict.details.get("audit")
    if isinstance(audit, dict) and isinstance(audit.get("templates"), dict):
        out["templates"] = audit["templates"]
    return out


_SAMPLE_FIELDS = {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics",
                  "doc_hash", "prompt_hash", "target_hash"}


def find_run_dirs(path: Path) -> list[Path]:
    """Folders at or below `path` (or the folder of a results file) that hold lm-eval results files."""
    if path.is_file():
        return [path.parent]
    return sorted({p.parent for p in path.rglob("results_*.json")})


def _sidecars(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in sorted(folder.glob("*.json")):
        if RESULTS_RE.match(p.name) or not any(h in p.name.lower() for h in SIDECAR_HINTS):
            continue
        try:
            out[p.name] = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            out[p.name] = {"error": f"unreadable: {e}"}
    return out


def _date_of(name: str) -> str:
    """The date id lm-eval put in a results file name (``results_<date>.json`` or ``<stem>_<date>.json``)."""
    m = re.search(r"_(\d{4}-\d{2}-\d{2}T[0-9.\-]+)\.json$", name)
    return m[1] if m else ""


def load_run(folder: Path, label: str | None = None, only: list[Path] | None = None) -> Run:
    """Merge the results files of one folder (newest wins per task) and attach each task's samples."""
    files = only or sorted(folder.glob("results_*.json"), key=lambda p: _date_of(p.name))
    if not files:
        raise FileNotFoundError(f"no lm-eval results_*.json in {folder}")
    samples_files: dict[str, list[tuple[str, Path]]] = {}
    for p in folder.glob("samples_*.jsonl"):
        m = SAMPLES_RE.match(p.name)
        if m:
            samples_files.setdefault(m["task"], []).append((m["date"], p))
    tasks: dict[str, TaskResult] = {}
    groups: dict[str, TaskResult] = {}
    group_subtasks: dict[str, list[str]] = {}
    config: dict[str, Any] = {}
    info: dict[str, Any] = {}
    model_name = ""
    for rf in files:
        data = check_results(read_json(rf), rf)
        date = _date_of(rf.name)
        group_subtasks.update(data.get("group_subtasks") or {})
        config = data.get("config") or config
        model_name = data.get("model_name") or model_name
        for k in ("lm_eval_version", "transformers_version", "git_hash", "date", "chat_template_sha",
                  "system_instruction", "fewshot_as_multiturn", "max_length", "total_evaluation_time_seconds",
                  "model_source"):
            if k in data:
                info[k] = data[k]
        group_names = set((data.get("groups") or {}).keys()) | set((data.get("group_subtasks") or {}).keys())
        entries = dict(data.get("results") or {})
        for name, entry in (data.get("groups") or {}).items():
            entries.setdefault(name, entry)
        for name, entry in entries.items():
            filt, metrics, stderr = split_metrics(entry)
            ns = (data.get("n-samples") or {}).get(name) or {}
            tr = TaskResult(
                name=name, metrics=metrics, stderr=stderr, filter=filt,
                n=ns.get("effective") if isinstance(ns, dict) else None,
                higher_is_better=(data.get("higher_is_better") or {}).get(name) or {},
                config=(data.get("configs") or {}).get(name) or {},
                version=(data.get("versions") or {}).get(name),
                results_file=rf.name,
            )
            if tr.n is None and isinstance(entry.get("sample_len"), int):
                tr.n = entry["sample_len"]
            if name in group_names:
                groups[name] = tr
                continue
            cands = samples_files.get(name, [])
            chosen = [p for d, p in cands if d == date] or [p for _, p in sorted(cands)[-1:]]
            if chosen:
                tr.samples, tr.sample_judge = read_samples(chosen[0], filt)
                tr.samples_file = chosen[0].name
            tasks[name] = tr
    if not label:
        label = Path(str(model_name)).name or folder.name
    return Run(path=folder, label=label, model_name=str(model_name), config=config, tasks=tasks, groups=groups,
               group_subtasks=group_subtasks, info=info, results_files=[p.name for p in files],
               sidecars=_sidecars(folder))


_OBJECT_FIELDS = ("results", "groups", "group_subtasks", "configs", "n-samples", "higher_is_better", "versions",
                  "config")


def check_results(data: Any, path: Path) -> dict[str, Any]:
    """The structure board.py relies on, with an InputError naming the file and the field otherwise."""
    if not isinstance(data, dict):
        raise InputError(path, None, None, f"not an lm-eval results file (a JSON {type(data).__name__}, "
                                           "expected an object)")
    for key in _OBJECT_FIELDS:
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise InputError(path, None, key, f"expected an object, got {type(data[key]).__name__}")
    for key in ("results", "groups", "n-samples", "configs", "higher_is_better"):
        for name, entry in (data.get(key) or {}).items():
            if entry is not None and not isinstance(entry, dict):
                raise InputError(path, None, f"{key}.{name}", f"expected an object, got {type(entry).__name__}")
    for key in ("results", "groups"):
        for name, entry in (data.get(key) or {}).items():
            for metric, value in (entry or {}).items():
                if "," in metric and not metric.split(",", 1)[0].endswith("_stderr"):
                    _check_score(value, path, None, f"{key}.{name}.{metric}")
    for name, subs in (data.get("group_subtasks") or {}).items():
        if not isinstance(subs, list):
            raise InputError(path, None, f"group_subtasks.{name}", f"expected a list, got {type(subs).__name__}")
    return data


def parse_run_arg(arg: str) -> tuple[str | None, Path]:
    """``PATH`` or ``LABEL=PATH`` (only when PATH exists and the whole argument does not)."""
    if "=" in arg and not Path(arg).exists():
        label, path = arg.split("=", 1)
        if Path(path).exists():
            return label, Path(path)
    return None, Path(arg)


def load_runs(args: list[str]) -> list[Run]:
    """All runs under the given paths, labelled; duplicate labels get the folder part that differs."""
    runs: list[Run] = []
    for arg in args:
        label, path = parse_run_arg(arg)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        dirs = find_run_dirs(path)
        if not dirs:
            raise FileNotFoundError(f"{path}: no lm-eval results_*.json found")
        for d in dirs:
            only = [path] if path.is_file() else None
            runs.append(load_run(d, label if len(dirs) == 1 else None, only))
    disambiguate(runs)
    return runs


def input_files(runs: list[Run]) -> dict[str, Path]:
    """Every file the runs were read from (results, samples, sidecars), named: what no output may replace."""
    out: dict[str, Path] = {}
    for run in runs:
        names = [*run.results_files, *run.sidecars,
                 *(t.samples_file for t in run.tasks.values() if t.samples_file)]
        for name in names:
            out[f"input {run.path / name}"] = run.path / name
    return out


def disambiguate(runs: list[Run]) -> None:
    """Runs that share a label get the first path component (from the end) that tells them apart."""
    by_label: dict[str, list[Run]] = {}
    for r in runs:
        by_label.setdefault(r.label, []).append(r)
    for label, same in by_label.items():
        if len(same) < 2:
            continue
        parts = [r.path.resolve().parts for r in same]
        for depth in range(1, max(len(p) for p in parts) + 1):
            tags = [p[-depth] if depth <= len(p) else "" for p in parts]
            if len(set(tags)) == len(tags):
                for r, tag in zip(same, tags, strict=True):
                    r.label = f"{label} ({tag})"
                break
        else:
            for i, r in enumerate(same, 1):
                r.label = f"{label} (#{i})"
