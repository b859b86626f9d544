"""lm-eval 0.4.13's own long-context families (RULER, BABILong, LongBench v2, LongBench v1 and -E, InfiniteBench),
read as lm-eval writes them.

These tasks are lm-eval's, not ours: nothing here generates them, and their names, metric keys and groups are
those of lm-eval 0.4.13's ``tasks/ruler``, ``tasks/babilong``, ``tasks/longbench2`` and ``tasks/infinitebench``.
The board shows each family in a section of its own; this module turns a run into a *view* whose tasks are the
leaves of those sections:

* RULER reports one metric per context length (``"4096,none"``; ``--metadata max_seq_lengths``); a length a
  run did not evaluate is reported as -1 (its aggregation's "no samples"), per task and per sample, and is
  read as missing. View task ``<task>@<length>``, metric ``score`` (string match, 0-1).
* BABILong runs one length per lm-eval call (``--metadata max_seq_lengths``, lm-eval's default "0k"), read
  from ``configs.<task>.metadata``, except for tasks whose config fixes ``dataset_name`` (lm-eval 0.4.13's
  babilong_qa11-qa20 always load "0k"); several calls into one output folder give several lengths of the same
  task, all kept (newest file wins per task and length). View task ``<task>@<length>``, metric ``acc``.
* LongBench v2 is lm-eval's log-likelihood protocol (the letter with the highest log-likelihood), never mixed
  with our generative ``longreward_longbench_v2*`` tasks; the overall score pools every item (lm-eval's group
  weights by size) and the difficulty / length breakdowns come from the logged documents.
* LongBench v1 and LongBench-E (``longbench_<dataset>``, ``longbench_<dataset>_e``): lm-eval's protocol, one
  ``score`` (0-1) per task, never read as our ``longreward_longbench_*`` tasks (the same datasets, other prompts,
  data copy and scale).
* InfiniteBench: one ``score`` per task (lm-eval's group reports no aggregate).

A task that looks like a family's (its name prefix) but is not one of lm-eval 0.4.13's is listed, never
folded into a score; a results file that lacks a field this reading needs is an error naming file and field.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lr_eval.jsonl import InputError, read_json, read_jsonl
from lr_eval.suite import LM_EVAL_OWN

from .reader import RESULTS_RE, Run, Sample, TaskResult, check_results, read_samples, split_metrics

_LB2_DOMAINS = ("agent_history", "dialogue_history", "many_shot", "translate", "user_guide", "academic_multi",
                "fin_multi", "govt_multi", "legal_multi", "news_multi", "academic_single", "detective",
                "event_order", "fin_single", "govt_single", "legal_single", "lit_single", "graph", "table", "code")
_IB_TASKS = ("passkey", "kv_retrieval", "number_string", "code_run", "code_debug", "math_find", "longdialogue_qa_en",
             "longbook_qa_en", "longbook_sum_en", "longbook_choice_en", "longbook_qa_chn")


@dataclass(frozen=True)
class StockFamily:
    """One of lm-eval's long-context groups: its tasks (lm-eval 0.4.13's names, in its order) and how to read them.

    `lengths`: where a score's context length comes from: ``"metrics"`` (RULER: the metric keys are lengths),
    ``"metadata"`` (BABILong: ``configs.<task>.metadata.max_seq_lengths``, else `default_length`) or ``""``.
    `weighting`: how lm-eval's group combines its tasks (``"items"``: by size; ``"tasks"``: mean of tasks).
    """

    key: str
    title: str
    tasks: tuple[str, ...]
    metric: str
    lengths: Literal["", "metrics", "metadata"]
    weighting: Literal["items", "tasks"]
    pattern: str
    protocol: str
    default_length: str = ""
    breakdowns: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (doc field, its values in order) from the samples

    def claims(self, task: str) -> bool:
        """True when `task` looks like one of this family's (known or not)."""
        return re.match(self.pattern, task) is not None


#: lm-eval 0.4.13's LongBench v1 and LongBench-E task names (the suite's LM_EVAL_OWN: never our tasks).
_LB_TASKS = tuple(n for n in LM_EVAL_OWN if not n.endswith("_e"))
_LBE_TASKS = tuple(n for n in LM_EVAL_OWN if n.endswith("_e"))

STOCK: tuple[StockFamily, ...] = (
    StockFamily("ruler", "RULER (lm-eval)",
                ("niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2",
                 "niah_multikey_3", "niah_multiquery", "niah_multivalue", "ruler_vt", "ruler_cwe", "ruler_fwe",
                 "ruler_qa_squad", "ruler_qa_hotpot"),
                "score", "metrics", "tasks", r"^(niah_|ruler_)",
                "lm-eval's RULER: synthetic data sized with the model's tokenizer to each max_seq_lengths; "
                "string match (all references, or any for QA), 0-1; a length = the mean of the tasks at that length "
                "(lm-eval's group is unweighted); Avg = mean of the lengths"),
    StockFamily("babilong", "BABILong (lm-eval)", tuple(f"babilong_qa{i}" for i in range(1, 21)),
                "acc", "metadata", "items", r"^babilong_qa\d+$",
                "lm-eval's BABILong (RMT-team/babilong-1k-samples, 2-shot): the target is in the answer, 0-1; one "
                "length per lm-eval call (max_seq_lengths); a length pools the items of its tasks (lm-eval's group "
                "weights by size); lm-eval 0.4.13's babilong_qa11-qa20 always load the 0k config, so they count "
                "at 0k whatever max_seq_lengths says (lm-eval's own group score mixes them into every length)",
                default_length="0k"),
    StockFamily("longbench2", "LongBench v2 (lm-eval, log-likelihood)", tuple(f"longbench2_{d}" for d in _LB2_DOMAINS),
                "acc", "", "items", r"^longbench2_",
                "lm-eval's longbench2: the letter A-D with the highest log-likelihood after 'Answer:' (not the "
                "official generative protocol; see the LongBench v2 section for ours); accuracy 0-1 pooled over "
                "items as lm-eval's group; breakdowns from the logged documents' difficulty and length",
                breakdowns=(("difficulty", ("easy", "hard")), ("length", ("short", "medium", "long")))),
    StockFamily("longbench", "LongBench (lm-eval)", _LB_TASKS, "score", "", "tasks",
                r"^longbench_(?!v2_|chat$|judged_|e_).*(?<!_e)$",
                "lm-eval's own LongBench v1 tasks (longbench_*: Xnhyacinth/LongBench, lm-eval's prompts and its "
                "per-dataset metrics, 0-1), not our longreward_longbench_* tasks (the official LongBench data, "
                "truncation and metrics, 0-100): never mixed; Avg = mean of the tasks"),
    StockFamily("longbench_e", "LongBench-E (lm-eval)", _LBE_TASKS, "score", "", "tasks",
                r"^longbench_(?!v2_|chat$|judged_|e_).*_e$",
                "lm-eval's own LongBench-E tasks (longbench_*_e, lm-eval's protocol, 0-1), not our "
                "longreward_longbench_* LongBench-E tasks: never mixed; Avg = mean of the tasks"),
    StockFamily("infinitebench", "InfiniteBench (lm-eval)", tuple(f"infinitebench_{t}" for t in _IB_TASKS),
                "score", "", "tasks", r"^infinitebench_",
                "lm-eval's InfiniteBench (xinrongzhang2022/InfiniteBench, its own prompts and scoring), 0-1 per "
                "task; Avg = mean of the tasks"),
)
STOCK_BY_KEY: dict[str, StockFamily] = {f.key: f for f in STOCK}
_TASK_FAMILY: dict[str, StockFamily] = {t: f for f in STOCK for t in f.tasks}


def family_of(task: str) -> StockFamily | None:
    """The stock family whose lm-eval task `task` is (exact lm-eval name), else None."""
    return _TASK_FAMILY.get(task)


def unknown_tasks(run: Run) -> dict[str, list[str]]:
    """Family key -> tasks of the run that look like the family's but are not lm-eval 0.4.13's (listed only)."""
    out: dict[str, list[str]] = {}
    for t in sorted(run.tasks):
        if t in _TASK_FAMILY:
            continue
        fam = next((f for f in STOCK if f.claims(t)), None)
        if fam is not None:
            out.setdefault(fam.key, []).append(t)
    return out


def length_sort_key(length: str) -> tuple[float, str]:
    """Numeric order of lengths written as 4096, "1k", "128k"."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kK]?)", length)
    return (float(m[1]) * (1000 if m[2] else 1), length) if m else (float("inf"), length)


def length_label(length: str) -> str:
    """4096 -> "4k" (RULER's token counts, powers of two shown in k), "1k" stays."""
    if length.isdigit() and int(length) >= 1024 and int(length) % 1024 == 0:
        return f"{int(length) // 1024}k"
    return length


# ----------------------------------------------------------------------------------------- reading


def _need(data: dict[str, Any], path: Path, *keys: str) -> Any:
    cur: Any = data
    for i, k in enumerate(keys):
        if not isinstance(cur, dict) or k not in cur or cur[k] is None:
            raise InputError(path, None, ".".join(keys[: i + 1]),
                             "missing (lm-eval 0.4.13 writes it; a results file from another lm-eval version?)")
        cur = cur[k]
    return cur


def _ruler_lengths(metrics: dict[str, float | None]) -> dict[str, float]:
    """Length -> score of a RULER entry; -1 (lm-eval's "no samples at this length") and nulls are left out."""
    return {m: v for m, v in metrics.items() if m.isdigit() and v is not None and v != -1}


def _metadata_length(config: dict[str, Any], fam: StockFamily) -> str:
    """The length a BABILong task was loaded at: its config's fixed ``dataset_name`` (lm-eval 0.4.13's
    babilong_qa11-qa20 always load "0k", whatever ``max_seq_lengths`` says), else ``max_seq_lengths`` from the
    metadata (qa1-qa10 load that config), else lm-eval's default."""
    if isinstance(config.get("dataset_name"), str) and config["dataset_name"]:
        return config["dataset_name"]
    meta: dict[str, Any] = config["metadata"] if isinstance(config.get("metadata"), dict) else {}
    return str(meta.get("max_seq_lengths") or fam.default_length)


def _check_samples(path: Path, fam: StockFamily, metric_keys: set[str] | None) -> None:
    """The per-sample fields this reading needs, with an InputError naming file, line and field otherwise."""
    for n, row in read_jsonl(path, allow_empty=True):
        if isinstance(row, InputError):
            raise row
        for key in ("doc_id", "filter", "doc"):
            if key not in row:
                raise InputError(path, n, key, "missing (lm-eval 0.4.13 logs it for every sample)")
        if metric_keys is None:
            if fam.metric not in row:
                raise InputError(path, n, fam.metric, f"missing: the per-sample {fam.metric!r} of {fam.title}")
        elif not any(k in row for k in metric_keys):
            raise InputError(path, n, sorted(metric_keys)[0], "missing: no per-sample RULER length score")


@dataclass
class _Entry:
    fam: StockFamily
    task: str
    length: str | None
    value: float | None
    stderr: float | None
    n: int | None
    version: Any
    results_file: str
    samples: list[Sample] | None
    samples_file: str | None
    docs: list[dict[str, Any]] | None  # the logged documents, aligned with samples (breakdowns)


def _samples_for(folder: Path, task: str, date: str) -> Path | None:
    p = folder / f"samples_{task}_{date}.jsonl"
    return p if p.exists() else None


def _docs(path: Path, filt: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _, row in read_jsonl(path, allow_empty=True):
        if isinstance(row, dict) and row.get("filter", filt) == filt:
            out.append(row["doc"] if isinstance(row.get("doc"), dict) else {})
    return out


def read_entries(run: Run) -> list[_Entry]:
    """Every stock-family (task, length) of a run, from all its results files (newest wins per task and length)."""
    found: dict[tuple[str, str | None], _Entry] = {}
    for name in run.results_files:
        path = run.path / name
        m = RESULTS_RE.match(name)
        date = m["date"] if m else ""
        data = check_results(read_json(path), path)
        for task, entry in (data.get("results") or {}).items():
            fam = family_of(task)
            if fam is None:
                continue
            for key in ("configs", "n-samples", "versions"):
                _need(data, path, key, task)
            _need(data, path, "n-samples", task, "effective")
            filt, metrics, stderr = split_metrics(entry)
            n = data["n-samples"][task]["effective"]
            spath = _samples_for(run.path, task, date)
            if fam.lengths == "metrics":
                lengths = _ruler_lengths(metrics)
                if not any(k.isdigit() for k in metrics):
                    raise InputError(path, None, f"results.{task}",
                                     "no per-length metric ('4096,none'...): not lm-eval 0.4.13's RULER output")
                if spath:
                    _check_samples(spath, fam, set(lengths) or {k for k in metrics if k.isdigit()})
                for length_key, value in lengths.items():
                    smp = _length_samples(spath, filt, length_key) if spath else None
                    found[(task, length_key)] = _Entry(fam, task, length_key, value, None, len(smp) if smp else None,
                                                   data["versions"][task], name, smp, spath.name if spath else None,
                                                   None)
                continue
            if fam.metric not in metrics:
                raise InputError(path, None, f"results.{task}.{fam.metric},{filt}",
                                 f"missing: {fam.title} reports {fam.metric!r} per task in lm-eval 0.4.13")
            length = None
            if fam.lengths == "metadata":
                length = _metadata_length(_need(data, path, "configs", task), fam)
            smp, docs = None, None
            if spath:
                _check_samples(spath, fam, None)
                smp, _ = read_samples(spath, filt)
                smp = [dataclasses.replace(s, values={"score": s.values.get(fam.metric)}) for s in smp]
                docs = _docs(spath, filt) if fam.breakdowns else None
            found[(task, length)] = _Entry(fam, task, length, metrics[fam.metric], stderr.get(fam.metric), n,
                                           data["versions"][task], name, smp, spath.name if spath else None, docs)
    return list(found.values())


def _length_samples(path: Path, filt: str, length: str) -> list[Sample]:
    """The samples scored at one RULER length (value not -1), valued by that length's score."""
    samples, _ = read_samples(path, filt)
    return [dataclasses.replace(s, values={"score": v}) for s in samples
            if (v := s.values.get(length)) is not None and v != -1]


# ----------------------------------------------------------------------------------------- the view

POOLED = "@pooled"


def _task_result(name: str, value: float | None, stderr: float | None, n: int | None,
                 samples: list[Sample] | None, **kw: Any) -> TaskResult:
    return TaskResult(name=name, metrics={"score": value}, stderr={"score": stderr}, n=n,
                      higher_is_better={"score": True}, samples=samples, **kw)


def view(run: Run) -> Run:
    """The run as the stock sections read it: one task per (lm-eval task, length), plus pooled tasks.

    Names: ``<task>`` or ``<task>@<length>``; ``<family>@pooled[@<length>]`` and
    ``<family>@pooled@<field>=<value>`` pool every item of the family's tasks (lm-eval's size-weighted group),
    valued by the mean of their samples (or, without samples, by lm-eval's group score where it covers the
    whole family). Every task carries one metric, ``score``.
    """
    tasks: dict[str, TaskResult] = {}
    if not any(family_of(t) for t in run.tasks):  # every task of every results file is in run.tasks
        return dataclasses.replace(run, tasks=tasks, groups={})
    entries = read_entries(run)
    for e in entries:
        name = e.task if e.length is None else f"{e.task}@{e.length}"
        tasks[name] = _task_result(name, e.value, e.stderr, e.n, e.samples, version=e.version,
                                   results_file=e.results_file, samples_file=e.samples_file)
    for fam in STOCK:
        if fam.weighting != "items":
            continue
        mine = [e for e in entries if e.fam is fam]
        for length in sorted({e.length for e in mine}, key=lambda x: length_sort_key(x or "")):
            part = [e for e in mine if e.length == length]
            suffix = "" if length is None else f"@{length}"
            pooled = f"{fam.key}{POOLED}{suffix}"
            if all(e.samples is not None for e in part):
                items = [s for e in part for s in e.samples or []]
                tasks[pooled] = _task_result(pooled, None, None, len(items), items)
                for field, values in fam.breakdowns:
                    for v in values:
                        sel = [s for e in part for s, d in zip(e.samples or [], e.docs or [], strict=False)
                               if d.get(field) == v]
                        if sel:
                            tasks[f"{pooled}@{field}={v}"] = _task_result(f"{pooled}@{field}={v}", None, None,
                                                                          len(sel), sel)
            else:  # lm-eval's own group score, when this length's results hold the whole family as one group
                g = run.groups.get(fam.key)
                if g is not None and len(part) == len(fam.tasks) and length is None:
                    tasks[pooled] = _task_result(pooled, g.metrics.get(fam.metric), g.stderr.get(fam.metric),
                                                 sum(e.n or 0 for e in part) or None, None)
    return dataclasses.replace(run, tasks=tasks, groups={})


def lengths_of(v: Run, fam: StockFamily) -> list[str]:
    """The lengths a view holds for a family, in numeric order."""
    found = {name.split("@", 1)[1] for name in v.tasks
             if "@" in name and family_of(name.split("@", 1)[0]) is fam}
    return sorted(found, key=length_sort_key)


def series(v: Run, fam: StockFamily) -> dict[str, dict[str, float]]:
    """Task -> length -> score of one family in a view (the per-task lines of the length plot)."""
    out: dict[str, dict[str, float]] = {}
    for name, tr in v.tasks.items():
        task, _, length = name.partition("@")
        if length and family_of(task) is fam and tr.metrics.get("score") is not None:
            # the ignore below: the score is not None: tested above
            out.setdefault(task, {})[length] = float(tr.metrics["score"])  # type: ignore[arg-type]
    return {t: dict(sorted(d.items(), key=lambda kv: length_sort_key(kv[0]))) for t, d in sorted(out.items())}
