"""The leaderboard model: sections and columns as in the paper's tables, cells with bootstrap CIs, judge metadata.

A cell is an estimator tree over (task, metric[, length bucket]) leaves: a
category is the unweighted mean of its datasets (the paper's definition), the
paper's Avg the mean of its four columns. Intervals resample items within each
task independently (stratified bootstrap) and combine the replicates through
the same tree, so a category's interval accounts for every dataset in it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lr_eval import suite
from lr_eval.records import FieldError, JudgeReport
from lr_eval.reward import DIMENSIONS
from lr_eval.suite import CATEGORY_LABELS, FAMILIES, FAMILY, LENGTH_BUCKETS, Family, length_bucket

from . import longbench_v2 as lbv2
from . import published as pub
from . import stock
from .reader import Run, TaskResult
from lr_eval.stats import DEFAULT_ITERS, DEFAULT_SEED, bootstrap_means, percentile_ci, rng_for

# ----------------------------------------------------------------------------------------- task names

#: LongBench v1 categories (the benchmark's own grouping; the paper's judged LongBench uses the first three).
CATEGORIES: dict[str, tuple[str, ...]] = FAMILY["longbench"].categories()
LONGQA_DIMS = (*DIMENSIONS, FAMILY["longqa"].metric)
JUDGED_KINDS = {f.kind for f in FAMILIES if f.judged}
#: metrics reported beside a score as its standard error (AlpacaEval's own), used when lm-eval wrote none.
STDERR_ALIASES = {"win_rate": "standard_error", "length_controlled_winrate": "lc_standard_error"}
NOT_SCORES = {"standard_error", "lc_standard_error", "avg_length", "position_consistency"}
_BUCKET_SUFFIXES = tuple(f"_{b}" for b in LENGTH_BUCKETS)
#: the judged tasks' lower bound beside a metric M: ``M_pessimistic`` (judge-caused unscored counted as the minimum)
PESSIMISTIC = "_pessimistic"
#: a row whose judged tasks left more than this share of their items unscored (judge-caused) is marked
UNSCORED_MARK_RATE = 0.02


def classify(task: str) -> tuple[str, str | None]:
    """(kind, dataset) of a task name: lm-eval's own long-context families (:mod:`.stock`, kind
    ``lm_eval_<family>``, exact lm-eval names), else the suite table (:mod:`lr_eval.suite`); ("other", None)
    if in neither."""
    fam = stock.family_of(task)
    if fam is not None:
        return f"lm_eval_{fam.key}", task
    hit = suite.classify(task)
    if hit is None:
        return "other", None
    family, dataset = hit
    return family.kind, dataset.name if dataset else None


def sample_bucket(sample: Any) -> str | None:
    """A sample's length bucket: from its document's length, else from a ``<metric>_<bucket>`` key it carries."""
    return length_bucket(sample.length) if sample.length is not None else sample.bucket


def is_judge_metric(metric: str) -> bool:
    """Bookkeeping metrics (judge counts and costs, per-dimension unscored counts), never a column's score."""
    return (metric.startswith("judge_") or metric.endswith(("_unscored", "_cost_usd"))
            or metric in {"unscored", "n_unscored", "cost_usd"})


def primary_metric(tr: TaskResult, preferred: tuple[str, ...] = ("score",)) -> str | None:
    """The metric a task's column shows: a preferred name, else the first higher-is-better non-judge metric."""
    for m in preferred:
        if m in tr.metrics:
            return m
    cands = [m for m in tr.metrics if not is_judge_metric(m) and m not in NOT_SCORES
             and not m.endswith((*_BUCKET_SUFFIXES, PESSIMISTIC))]
    better = [m for m in cands if tr.higher_is_better.get(m, True)]
    pool = better or cands
    return pool[0] if pool else None


# ----------------------------------------------------------------------------------------- estimators

@dataclass(frozen=True)
class Leaf:
    """One metric of one task, optionally restricted to the documents of one length bucket."""

    task: str
    metric: str
    bucket: str | None = None

    def key(self) -> str:
        return f"{self.task}|{self.metric}|{self.bucket or ''}"


@dataclass(frozen=True)
class Mean:
    """Unweighted mean of its children (a category over datasets, an average over columns).

    `skip_missing`: average the children that have a value (a length bucket that some
    dataset has no documents in) instead of leaving the whole cell empty.
    """

    children: tuple[Est, ...]
    skip_missing: bool = False


Est = Leaf | Mean


def leaves(est: Est) -> list[Leaf]:
    return [est] if isinstance(est, Leaf) else [lf for c in est.children for lf in leaves(c)]


def detect_scale(values: list[float | None], reported: float | None) -> float | None:
    """The factor k with mean(scored sample values) * k == reported (1, 100 or 0.01), or None.

    The check guards the intervals: a bootstrap over per-sample values is only a
    CI of the reported number when that number is their mean (a corpus-level
    metric such as AlpacaEval's LC win rate is not, and gets no sample CI).
    """
    xs = [v for v in values if v is not None]
    if not xs or reported is None:
        return None
    m = sum(xs) / len(xs)
    for k in (1.0, 100.0, 0.01):
        if math.isclose(m * k, reported, rel_tol=1e-6, abs_tol=1e-9):
            return k
    return None


@dataclass
class LeafData:
    """What a run says about one leaf: the value, the scored items (in reported units), stderr and counts."""

    value: float | None
    items: np.ndarray | None = None
    keys: list[tuple] | None = None
    stderr: float | None = None
    n: int | None = None
    unscored: int = 0
    note: str | None = None
    pessimistic: float | None = None


def unscored_flags(tr: TaskResult, metric: str) -> list[bool] | None:
    """Per sample, whether the judge left `metric` unscored: from ``judge_unscored`` or ``<metric>_unscored``
    when the task logs them (our judged tasks do), else None (then a missing or null value counts)."""
    if not tr.samples:
        return None
    for key in (f"{metric}_unscored", "judge_unscored"):
        if any(key in smp.values for smp in tr.samples):
            return [bool(smp.values.get(key)) for smp in tr.samples]
    return None


def leaf_data(run: Run, leaf: Leaf) -> LeafData:
    """Read one leaf from a run; the bucket restriction needs samples with a document length (or bucket key)."""
    tr = run.tasks.get(leaf.task)
    if tr is None:
        return LeafData(None, note="not run")
    reported = tr.metrics.get(leaf.metric)
    pess = tr.metrics.get(f"{leaf.metric}{PESSIMISTIC}") if leaf.bucket is None else None
    d = _leaf_data(tr, leaf, reported)
    d.pessimistic = pess
    return d


def _leaf_data(tr: TaskResult, leaf: Leaf, reported: float | None) -> LeafData:
    samples = tr.samples
    if samples is not None:
        vals = [smp.values.get(leaf.metric) for smp in samples]
        scale = detect_scale(vals, reported) if reported is not None else 1.0
        if scale is not None:
            use_hash = all(smp.doc_hash for smp in samples)
            flags = unscored_flags(tr, leaf.metric) or [v is None for v in vals]
            rows = [(smp.key(use_hash), None if v is None else v * scale, sample_bucket(smp), f)
                    for smp, v, f in zip(samples, vals, flags, strict=True)]
            if leaf.bucket is not None:
                if all(b is None for _, _, b, _ in rows):
                    return LeafData(_bucket_metric(tr, leaf), note="no document lengths in samples")
                rows = [r for r in rows if r[2] == leaf.bucket]
            scored = [(k, v) for k, v, _, _ in rows if v is not None]
            items = np.array([v for _, v in scored], dtype=float)
            if leaf.bucket is None and reported is not None:
                value: float | None = reported
            else:
                value = float(items.mean()) if len(items) else None
            return LeafData(value, items, [k for k, _ in scored], n=len(items),
                            unscored=sum(1 for r in rows if r[3]))
        note = "aggregate is not a mean of per-sample values: no sample CI"
    else:
        note = "no samples logged"
    if leaf.bucket is not None:
        return LeafData(_bucket_metric(tr, leaf), note=note)
    se = tr.stderr.get(leaf.metric)
    if se is None and leaf.metric in STDERR_ALIASES:
        se = tr.metrics.get(STDERR_ALIASES[leaf.metric])
    return LeafData(reported, stderr=se, n=tr.n, note=note)


def _bucket_metric(tr: TaskResult, leaf: Leaf) -> float | None:
    """A bucket score reported as a metric key (e.g. ``score_0-4k`` or ``0-4k``), when samples cannot give it."""
    for key in (f"{leaf.metric}_{leaf.bucket}", f"{leaf.metric}@{leaf.bucket}", str(leaf.bucket)):
        if tr.metrics.get(key) is not None:
            return tr.metrics[key]
    return None


@dataclass
class Estimate:
    value: float | None
    reps: np.ndarray | None = None
    stderr: float | None = None
    n: int = 0
    unscored: int = 0
    notes: list[str] = field(default_factory=list)
    pessimistic: float | None = None


class Estimator:
    """Evaluates estimator trees on one run, caching each leaf's bootstrap replicates."""

    def __init__(self, run: Run, iters: int = DEFAULT_ITERS, seed: int = DEFAULT_SEED) -> None:
        self.run, self.iters, self.seed = run, iters, seed
        self._cache: dict[Leaf, Estimate] = {}

    def leaf(self, leaf: Leaf) -> Estimate:
        if leaf not in self._cache:
            d = leaf_data(self.run, leaf)
            reps = None
            if d.items is not None and len(d.items):
                reps = bootstrap_means(d.items, self.iters, rng_for(self.seed, leaf.key()))
            self._cache[leaf] = Estimate(d.value, reps, d.stderr, d.n or 0, d.unscored,
                                         [f"{leaf.task}: {d.note}"] if d.note else [], d.pessimistic)
        return self._cache[leaf]

    def estimate(self, est: Est) -> Estimate:
        if isinstance(est, Leaf):
            return self.leaf(est)
        parts = [self.estimate(c) for c in est.children]
        if est.skip_missing:
            parts = [p for p in parts if p.value is not None]
        if not parts or any(p.value is None for p in parts):
            return Estimate(None)
        value = float(np.mean([p.value for p in parts]))
        reps_of = [p.reps for p in parts if p.reps is not None]
        reps = np.mean(reps_of, axis=0) if len(reps_of) == len(parts) else None
        se = None
        if reps is None and all(p.stderr is not None for p in parts):  # independent tasks: Var(mean) = sum(var)/k^2
            se = math.sqrt(sum((p.stderr or 0.0) ** 2 for p in parts)) / len(parts)  # all not None (checked above)
        notes = sorted({n for p in parts for n in p.notes})
        # the bound of a mean is the mean of the bounds (a mean is linear); only when every part has one
        pess = float(np.mean([p.pessimistic for p in parts])) if all(p.pessimistic is not None for p in parts) \
            else None
        return Estimate(value, reps, se, sum(p.n for p in parts), sum(p.unscored for p in parts), notes, pess)


# ----------------------------------------------------------------------------------------- board model

@dataclass
class Cell:
    value: float | None
    ci: tuple[float, float] | None = None
    ci_method: str | None = None
    n: int | None = None
    unscored: int = 0
    coverage: str | None = None
    notes: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    pessimistic: float | None = None  # the judged tasks' lower bound (unscored counted as the scale minimum)


@dataclass
class Column:
    key: str
    label: str
    title: str
    build: Callable[[Run], tuple[Est | None, str | None]]
    decimals: int = 1
    higher_is_better: bool = True


@dataclass
class Row:
    label: str
    source: str  # "measured" or "published"
    cells: dict[str, Cell]
    run: Run | None = None
    judge: JudgeInfo | None = None
    notes: list[str] = field(default_factory=list)
    section_judge: dict[str, Any] | None = None
    series: dict[str, dict[str, float]] | None = None  # length sections: task -> length -> score (the plot's lines)

    @property
    def unscored_mark(self) -> bool:
        """More than 2% of this row's judged items unscored, on results that report whose fault (tampered)."""
        j = self.section_judge
        return bool(j and j.get("tampered") is not None and j["unscored_rate"] is not None
                    and j["unscored_rate"] > UNSCORED_MARK_RATE)


@dataclass
class Section:
    key: str
    title: str
    description: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    view: Callable[[Run], Run] | None = None  # what the columns read instead of the run (lm-eval's own families)
    family: str | None = None  # the stock family (lm-eval's) a section shows


Builder = Callable[[Run], tuple[Est | None, str | None]]


def _tasks_of(run: Run, family: Family, datasets: tuple[str, ...] | None = None) -> list[str]:
    out = []
    for t in run.tasks:
        k, d = classify(t)
        if k == family.kind and (datasets is None or d in datasets):
            out.append(t)
    if datasets is not None:  # the category's own dataset order
        out.sort(key=lambda t: datasets.index(classify(t)[1]))
    return out


def _metric(run: Run, task: str, preferred: tuple[str, ...] = ("score",)) -> str | None:
    return primary_metric(run.tasks[task], preferred)


def _category_col(family: Family, cat: str, metric: str | None = None) -> Builder:
    datasets = family.categories()[cat]

    def build(run: Run) -> tuple[Est | None, str | None]:
        ts = _tasks_of(run, family, datasets)
        if metric:
            leaves_ = [Leaf(t, metric) for t in ts if metric in run.tasks[t].metrics]
        else:
            leaves_ = [Leaf(t, m) for t in ts if (m := _metric(run, t))]
        if not leaves_:
            return None, None
        cov = f"{len(leaves_)}/{len(datasets)} datasets"
        return (leaves_[0] if len(leaves_) == 1 else Mean(tuple(leaves_))), cov
    return build


def _single_col(kind: str, preferred: tuple[str, ...], strict: bool = False, dataset: str | None = None) -> Builder:
    """The first task of a kind (of one dataset, if given) with the first preferred metric it reports."""
    def build(run: Run) -> tuple[Est | None, str | None]:
        ts = [t for t in run.tasks if (kd := classify(t))[0] == kind and dataset in (None, kd[1])]
        if not ts:
            return None, None
        m = next((p for p in preferred if p in run.tasks[ts[0]].metrics), None)
        if m is None and not strict:
            m = _metric(run, ts[0], preferred)
        return (Leaf(ts[0], m), None) if m else (None, None)
    return build


def is_partial(coverage: str | None) -> bool:
    """True when a coverage string says some of a column's parts are missing ("1/4 datasets", "..., 2 partial")."""
    if not coverage:
        return False
    have, total = coverage.split()[0].split("/")
    return have != total or "partial" in coverage


def _mean_of(builders: list[Builder], what: str) -> Builder:
    def build(run: Run) -> tuple[Est | None, str | None]:
        built = [b(run) for b in builders]
        present = [p for p, _ in built if p is not None]
        if not present:
            return None, None
        if len(present) < len(built):
            return None, f"{len(present)}/{len(built)} {what}"
        partial = sum(is_partial(c) for _, c in built)
        return Mean(tuple(present)), (f"{len(built)}/{len(built)} {what}, {partial} partial" if partial else None)
    return build


def _bucket_col(family: Family, bucket: str | None) -> Builder:
    def build(run: Run) -> tuple[Est | None, str | None]:
        ts = _tasks_of(run, family)
        leaves_ = [Leaf(t, m, bucket) for t in ts if (m := _metric(run, t))]
        if not leaves_:
            return None, None
        return (leaves_[0] if len(leaves_) == 1 else Mean(tuple(leaves_), skip_missing=bucket is not None)), \
            f"{len(leaves_)}/{len(family.datasets)} datasets"
    return build


def _main_section() -> Section:
    """The paper's main table: LongBench-Chat, the judged LongBench categories and their average."""
    chat = _single_col(FAMILY["longbench_chat"].kind, ("score",))
    judged = FAMILY["longbench_judged"]
    sdoc, mdoc, summ = (_category_col(judged, c) for c in judged.categories())
    return Section("main", "Long-context (paper's main table)",
                   "LongBench-Chat and the judged LongBench categories (0-100).", [
                       Column("lb_chat", "LB-Chat", pub.PROTOCOL["lb_chat"]["note"], chat),
                       Column("sdoc", "S-Doc QA", pub.PROTOCOL["sdoc"]["note"], sdoc),
                       Column("mdoc", "M-Doc QA", pub.PROTOCOL["mdoc"]["note"], mdoc),
                       Column("summ", "Summ", pub.PROTOCOL["summ"]["note"], summ),
                       Column("avg", "Avg", pub.PROTOCOL["avg"]["note"], _mean_of([chat, sdoc, mdoc, summ], "columns")),
                   ])


def _short_section() -> Section:
    """The paper's short-instruction table: MT-Bench and AlpacaEval 2."""
    alpaca = FAMILY["alpacaeval2"].kind
    return Section("short", "Short instructions (paper's short-instruction table)",
                   "MT-Bench (1-10) and AlpacaEval 2 (win rates, %).", [
                       Column("mt_bench", "MT-Bench", pub.PROTOCOL["mt_bench"]["note"],
                              _single_col(FAMILY["mtbench"].kind, (FAMILY["mtbench"].metric,)),
                              decimals=FAMILY["mtbench"].decimals),
                       Column("alpaca_lc", "AlpacaEval2 LC", pub.PROTOCOL["alpaca_lc"]["note"],
                              _single_col(alpaca, ("length_controlled_winrate", "lc_winrate"), strict=True)),
                       Column("alpaca_wr", "AlpacaEval2 WR", "AlpacaEval 2 raw win rate vs the reference outputs",
                              _single_col(alpaca, ("win_rate",), strict=True)),
                   ])


def _longbench_section() -> Section:
    fam = FAMILY["longbench"]
    cats = fam.categories()
    builders = [_category_col(fam, c) for c in cats]
    return Section("longbench", "LongBench (official metrics)",
                   "LongBench v1 with its official per-dataset metrics (F1, ROUGE-L, accuracy, edit similarity), "
                   "category = mean of its datasets; not comparable with the judged columns above.",
                   [Column(f"lb_{c}", CATEGORY_LABELS[c], f"LongBench {CATEGORY_LABELS[c]}: " + ", ".join(ds), b)
                    for (c, ds), b in zip(cats.items(), builders, strict=True)]
                   + [Column("lb_avg", "Avg", f"mean of the {_count(len(cats))} categories",
                             _mean_of(builders, "categories"))])


def _count(n: int) -> str:
    return {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}.get(n, str(n))


def _longbench_e_section() -> Section:
    fam = FAMILY["longbench_e"]
    return Section("longbench_e", "LongBench-E by context length",
                   "Score by document length bucket (LongBench-E datasets; bucket = mean over datasets of "
                   "the per-dataset bucket means).",
                   [Column(f"e_{b}", b, f"documents with length in {b}", _bucket_col(fam, b))
                    for b in fam.length_buckets]
                   + [Column("e_all", "All", "all lengths", _bucket_col(fam, None))])


def _dim_label(d: str) -> str:
    return "LongReward" if d == "longreward" else d.capitalize()


def _longqa_section() -> Section:
    fam = FAMILY["longqa"]
    return Section("longqa", fam.title,
                   f"Our judge's four dimensions and their mean ({fam.scale}) on long-context QA ({fam.prefix}).",
                   [Column(f"lq_{d}", _dim_label(d), f"LongReward {d} ({fam.scale})",
                           _single_col(fam.kind, (d,), strict=True), decimals=fam.decimals) for d in LONGQA_DIMS])


def _longqa_lb_section() -> Section:
    fam = FAMILY["longqa_longbench"]
    cats = tuple(fam.categories())
    labels = {"single_doc_qa": "S-Doc", "multi_doc_qa": "M-Doc"}
    return Section(
        "longqa_lb", fam.title,
        f"LongReward ({fam.scale}) of the answers to LongBench single- and multi-doc QA ({fam.prefix}_*): "
        "each dimension is the mean of the two categories, each the mean of its datasets.",
        [Column(f"lqlb_{d}", _dim_label(d), f"LongReward {d} ({fam.scale}), mean of S-Doc and M-Doc QA",
                _mean_of([_category_col(fam, c, d) for c in cats], "categories"), decimals=fam.decimals)
         for d in LONGQA_DIMS]
        + [Column(f"lqlb_{c}", f"LongReward {labels.get(c, CATEGORY_LABELS[c])}",
                  f"LongReward ({fam.scale}) on LongBench {CATEGORY_LABELS[c]}",
                  _category_col(fam, c, fam.metric), decimals=fam.decimals) for c in cats])


#: CoT-QA columns in the order of the tables that report LongReward-trained models this way (LongMab-PO).
COTQA_LABELS: dict[str, str] = {"multifieldqa_en": "MFQA-en", "narrativeqa": "NarrativeQA",
                                "longbook_qa_eng": "En.QA", "2wikimqa": "2WikiMQA", "musique": "MuSiQue"}


def _cotqa_section() -> Section:
    """SubEM per dataset, their mean (the tables' overall SubEM) and MuSiQue's token F1."""
    fam = FAMILY["cotqa"]
    if set(COTQA_LABELS) != set(fam.names):
        raise ValueError("board: COTQA_LABELS must name exactly the cotqa family's datasets")
    cols = [Column(f"cotqa_{d}", label, f"{label}: SubEM (0-100) of the answer after 'Answer:'",
                   _single_col(fam.kind, ("sub_em",), strict=True, dataset=d)) for d, label in COTQA_LABELS.items()]
    return Section("cotqa", fam.title,
                   "The CoT-answer protocol (NEUIR/LongMab-PO): the model reasons, then answers after 'Answer:'; "
                   "SubEM = a normalised gold answer is inside the extracted answer, 0 when none is found; "
                   f"{fam.prefix}_* on LongBench and InfiniteBench En.QA.",
                   cols + [Column("cotqa_avg", "Avg", "mean SubEM over the five datasets (the tables' overall SubEM)",
                                  _mean_of([c.build for c in cols], "datasets")),
                           Column("cotqa_musique_f1", "MuSiQue F1", "MuSiQue: token F1 (0-100) of the extracted answer",
                                  _single_col(fam.kind, ("f1",), strict=True, dataset="musique"))])


def _v2_col(task: str, breakdown: str) -> Builder:
    name = f"{task}@{breakdown}"
    return lambda v: (Leaf(name, "score"), None) if name in v.tasks else (None, None)


def _longbench_v2_section() -> Section:
    """result.py's table, as the official leaderboard lays it out: each breakdown w/o and w/ CoT, then the
    no-context and RAG variants' overall; read through :func:`.longbench_v2.view`."""
    fam = lbv2.FAMILY_V2
    cols = [Column(lbv2.column_key(s, b), f"{label}{' CoT' if s == 'cot' else ''}",
                   f"{label} ({setting}): result.py's {b}, 100 x accuracy ({fam.task(s)})", _v2_col(fam.task(s), b))
            for b, label in lbv2.BREAKDOWNS.items() for s, setting in lbv2.SETTINGS.items()]
    cols += [Column(f"lb2_{v}_overall", label, f"{label}: result.py's overall ({fam.task(v)})",
                    _v2_col(fam.task(v), "overall")) for v, label in (("no_context", "No context"), ("rag", "RAG"))]
    return Section("longbench_v2", fam.title,
                   "LongBench v2 the official way (our longreward_longbench_v2* tasks: generative, the letter parsed "
                   "from 'The correct answer is (X)'), 100 x accuracy; Easy/Hard by difficulty, Short/Medium/Long by "
                   "the length field (result.py's breakdowns). Not comparable with lm-eval's log-likelihood "
                   "longbench2.", cols, view=lbv2.view)


#: Sections the board lays out itself (the paper's tables and ours); any other suite section is generic.
LAYOUTS: dict[str, Callable[[], Section]] = {
    "main": _main_section, "short": _short_section, "longbench": _longbench_section,
    "longbench_e": _longbench_e_section, "longqa": _longqa_section, "longqa_lb": _longqa_lb_section,
    "cotqa": _cotqa_section, "longbench_v2": _longbench_v2_section,
}


def family_section(families: list[Family]) -> Section:
    """A section the board has no layout for: one column per dataset (or per one-task family) with its
    family's primary metric, and their mean when there are several on one scale."""
    cols: list[Column] = []
    for fam in families:
        if not fam.datasets:
            cols.append(Column(fam.key, fam.title, f"{fam.title}: {fam.metric} ({fam.scale})",
                               _single_col(fam.kind, (fam.metric,)), decimals=fam.decimals))
        cols += [Column(f"{fam.key}_{d}", d if len(families) == 1 else f"{fam.title} {d}",
                        f"{fam.title} {d}: {fam.metric} ({fam.scale})",
                        _single_col(fam.kind, (fam.metric,), dataset=d), decimals=fam.decimals) for d in fam.names]
    key = families[0].section
    if len(cols) > 1 and len({f.scale for f in families}) == 1:  # a mean only of numbers on one scale
        cols.append(Column(f"{key}_avg", "Avg", f"mean of the {len(cols)} columns",
                           _mean_of([c.build for c in cols], "columns"), decimals=max(c.decimals for c in cols)))
    sources = "; ".join(f.source for f in families if f.source)
    return Section(key, " / ".join(f.title for f in families),
                   "; ".join(f"{f.title}: {f.metric} ({f.scale})" for f in families)
                   + (f" ({sources})" if sources else "") + ".", cols)


def standard_sections() -> list[Section]:
    """One section per suite section, in suite order: the laid-out tables, then one per other section."""
    sections: dict[str, list[Family]] = {}
    for fam in FAMILIES:
        sections.setdefault(fam.section, []).append(fam)
    return [LAYOUTS[key]() if key in LAYOUTS else family_section(fams) for key, fams in sections.items()]


def _task_leaf(task: str, metric: str, run: Run) -> tuple[Est | None, str | None]:
    """A task's metric as it stands in the run, or nothing where the run lacks the task."""
    return (Leaf(task, metric), None) if task in run.tasks else (None, None)


def other_section(runs: list[Run]) -> Section | None:
    """One column per task (primary metric) for tasks the suite does not know."""
    cols: dict[str, Column] = {}
    for run in runs:
        for t in run.tasks:
            if classify(t)[0] != "other" or t in cols:
                continue
            m = primary_metric(run.tasks[t])
            if m is None:
                continue
            cols[t] = Column(f"other_{t}", f"{t} ({m})", f"task {t}, metric {m}",
                             functools.partial(_task_leaf, t, m), decimals=2)
    if not cols:
        return None
    return Section("other", "Other tasks", "Tasks outside the LongReward suite, primary metric each.",
                   [cols[k] for k in sorted(cols)])


# ----------------------------------------------------------------------------------------- lm-eval's families

def _stock_coverage(v: Run, fam: stock.StockFamily, length: str | None) -> tuple[list[str], str]:
    """The family's tasks a view has (at one length) and the coverage string ("3/13 tasks")."""
    have = [t for t in fam.tasks if (t if length is None else f"{t}@{length}") in v.tasks]
    return have, f"{len(have)}/{len(fam.tasks)} tasks"


def _stock_col(fam: stock.StockFamily, length: str | None, breakdown: str | None = None) -> Builder:
    """One family score: the mean of its tasks (RULER, InfiniteBench: lm-eval's unweighted group), or every
    item pooled (BABILong, LongBench v2: lm-eval's size-weighted group), at one length or breakdown value."""
    def build(v: Run) -> tuple[Est | None, str | None]:
        have, cov = _stock_coverage(v, fam, length)
        if not have:
            return None, None
        names = [t if length is None else f"{t}@{length}" for t in have]
        if fam.weighting == "tasks":
            lvs = tuple(Leaf(n, "score") for n in names)
            return (lvs[0] if len(lvs) == 1 else Mean(lvs)), cov
        pooled = f"{fam.key}{stock.POOLED}" + (f"@{length}" if length else "") + (f"@{breakdown}" if breakdown else "")
        if pooled in v.tasks:
            return Leaf(pooled, "score"), cov
        ns = {v.tasks[n].n for n in names}
        if breakdown is None and len(ns) == 1 and None not in ns:  # no samples: equal sizes pool as a mean
            lvs = tuple(Leaf(n, "score") for n in names)
            return (lvs[0] if len(lvs) == 1 else Mean(lvs)), cov
        return None, None
    return build


def _stock_task_col(task: str) -> Builder:
    return lambda v: (Leaf(task, "score"), None) if task in v.tasks else (None, None)


def stock_sections(views: dict[str, Run]) -> list[Section]:
    """One section per lm-eval long-context family some run has: RULER and BABILong by length (plus Avg over the
    lengths), LongBench v2 overall with its breakdowns, InfiniteBench per task (plus Avg)."""
    out = []
    for fam in stock.STOCK:
        present = [v for v in views.values() if any(classify(n.split("@", 1)[0])[0] == f"lm_eval_{fam.key}"
                                                     for n in v.tasks)]
        if not present:
            continue
        cols: list[Column] = []
        if fam.lengths:
            lengths = sorted({ln for v in present for ln in stock.lengths_of(v, fam)}, key=stock.length_sort_key)
            cols = [Column(f"{fam.key}_{ln}", stock.length_label(ln), f"{fam.title} at max_seq_lengths {ln}",
                           _stock_col(fam, ln), decimals=3) for ln in lengths]
            if len(cols) > 1:
                cols.append(Column(f"{fam.key}_avg", "Avg", f"mean of the {len(cols)} lengths",
                                   _mean_of([c.build for c in cols], "lengths"), decimals=3))
        elif fam.breakdowns:
            cols = [Column(f"{fam.key}_overall", "Overall", f"{fam.title}: every item", _stock_col(fam, None),
                           decimals=3)]
            cols += [Column(f"{fam.key}_{val}", val.capitalize(), f"{fam.title}: items with {field} = {val} "
                            "(from the logged documents)", _stock_col(fam, None, f"{field}={val}"), decimals=3)
                     for field, values in fam.breakdowns for val in values]
        else:
            cols = [Column(f"{fam.key}_{t}", t.removeprefix(f"{fam.key}_"), f"lm-eval task {t}",
                           _stock_task_col(t), decimals=3) for t in fam.tasks
                    if any(t in v.tasks for v in present)]
            if len(cols) > 1:
                cols.append(Column(f"{fam.key}_avg", "Avg", f"mean of the {len(fam.tasks)} tasks (only when all "
                                   "were run)", _stock_avg(fam), decimals=3))
        out.append(Section(f"lm_eval_{fam.key}", fam.title, fam.protocol + ".", cols, view=stock.view,
                           family=fam.key))
    return out


def _stock_avg(fam: stock.StockFamily) -> Builder:
    def build(v: Run) -> tuple[Est | None, str | None]:
        have, cov = _stock_coverage(v, fam, None)
        if not have:
            return None, None
        if len(have) < len(fam.tasks):
            return None, cov
        return Mean(tuple(Leaf(t, "score") for t in have)), cov
    return build


def stock_notes(sec: Section, runs: list[Run], views: dict[str, Run]) -> list[str]:
    """What a stock section left out: partial families (the tasks missing) and tasks it does not know."""
    fam = stock.STOCK_BY_KEY[sec.family or ""]
    notes = []
    for run in runs:
        v = views[run.label]
        have = {n.split("@", 1)[0] for n in v.tasks if stock.family_of(n.split("@", 1)[0]) is fam}
        for length in (stock.lengths_of(v, fam) if fam.lengths else [None]):
            at = [t for t in fam.tasks if (t if length is None else f"{t}@{length}") in v.tasks]
            if at and len(at) < len(fam.tasks):
                where = "" if length is None else f" at {stock.length_label(length)}"
                notes.append(f"{run.label}: partial {fam.title}{where}: {len(at)} of {len(fam.tasks)} tasks "
                             f"({', '.join(at)}); not run{where}: {', '.join(t for t in fam.tasks if t not in at)}")
        unknown = stock.unknown_tasks(run).get(fam.key)
        if unknown:
            notes.append(f"{run.label}: not read (not a {fam.title} task of lm-eval 0.4.13; see Other tasks): "
                         + ", ".join(unknown))
        ver = run.info.get("lm_eval_version")
        if have and ver and ver != "0.4.13":
            notes.append(f"{run.label}: written by lm-eval {ver}; this board reads lm-eval 0.4.13's format")
    return notes


# ----------------------------------------------------------------------------------------- judge metadata

@dataclass
class JudgeInfo:
    """Judge metadata of one run, from metric keys, task-config metadata, samples and sidecar files."""

    models: list[str] = field(default_factory=list)
    templates: dict[str, str] = field(default_factory=dict)
    judged_items: int = 0
    unscored: int = 0
    unscored_rate: float | None = None
    cost_usd: float | None = None
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    self_judged: bool = False
    sources: list[str] = field(default_factory=list)
    tampered: int | None = None  # items scored as the minimum because the evaluated text tampered; None: not reported


# Keys searched in sidecar files that other tools write, in --metadata keys and in logged verdicts; the judge
# report of our tasks is read only through its record (lr_eval.records.JudgeReport).
_SIDECAR_MODEL_KEYS = ("judge_model", "judge", "judge_name", "model")
_TEMPLATE_KEYS = ("judge_template_versions", "judge_template_version", "template_versions", "template_version",
                  "judge_templates", "templates", "prompt_version", "prompt_versions")
_SIDECAR_COST_KEYS = ("judge_cost_usd", "cost_usd", "cost")
_SIDECAR_UNSCORED_KEYS = ("judge_unscored", "unscored", "n_unscored", "unscored_count")


def _find(obj: Any, keys: tuple[str, ...]) -> Any:
    """The value of the first of `keys` found breadth-first in nested dicts."""
    queue = [obj]
    while queue:
        cur = queue.pop(0)
        if isinstance(cur, dict):
            for k in keys:
                if k in cur and cur[k] not in (None, "", {}):
                    return cur[k]
            queue.extend(v for v in cur.values() if isinstance(v, dict))
    return None


def _id_and_version(key: str, value: str) -> tuple[str, str]:
    """("id", "version") from "id@version", else (key, value)."""
    if "@" in value:
        template, _, version = value.partition("@")
        return template, version
    return key, value


def _as_templates(value: Any, default_name: str) -> dict[str, str]:
    """Template id -> version from a dict, a list of ids, a bare version (named after the task) or an id."""
    if isinstance(value, dict):  # {id: version}, or {stage: "id@version"} as LongReward's audit logs them
        return dict(_id_and_version(str(k), str(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return {str(v): "" for v in value}
    if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"v?[\d.]+", value)):
        return {default_name: str(value)}
    if isinstance(value, str) and "@" in value:  # "id@version"
        tid, _, ver = value.partition("@")
        return {tid: ver}
    if value not in (None, ""):
        return {str(value): ""}
    return {}


def _model_str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict):
        return _model_str(value.get("model") or value.get("name"))
    return None


def _norm_model(name: str) -> str:
    base = re.split(r"[/\\]", name.strip().rstrip("/\\"))[-1].lower()
    base = re.sub(r"\.gguf$", "", base)
    return re.sub(r"[.\-_]q\d.*$", "", base)


def is_self_judged(run: Run, judge_models: list[str]) -> bool:
    """True when a judge model is (by name) the model being evaluated: its scores are then self-preference."""
    evaluated = {_norm_model(x) for x in (run.model_name, str(run.model_args.get("pretrained", "")),
                                          str(run.model_args.get("model", ""))) if x}
    evaluated.discard("")
    for j in judge_models:
        jn = _norm_model(j)
        if jn == "embedded":
            jn = "smollm2-135m-instruct"
        for e in evaluated:
            if jn == e or (min(len(jn), len(e)) >= 6 and (jn in e or e in jn)):
                return True
    return False


def _templates_of(obj: Any, default_name: str) -> dict[str, str]:
    """Template versions anywhere in `obj`: ``{template_id, template_version}`` pairs, ``template: "id@v"``,
    ``templates: {...}`` and ``judge_template_version(s)`` keys."""
    out: dict[str, str] = {}
    queue = [obj]
    while queue:
        cur = queue.pop(0)
        if not isinstance(cur, dict):
            continue
        if cur.get("template_id"):
            out[str(cur["template_id"])] = str(cur.get("template_version", ""))
        elif isinstance(cur.get("template"), str) and cur["template"]:
            tid, _, ver = cur["template"].partition("@")
            out[tid] = ver
        for k in _TEMPLATE_KEYS:
            if k in cur and k not in ("template_version",):
                out.update(_as_templates(cur[k], default_name))
        if "template_version" in cur and not cur.get("template_id"):
            out.update(_as_templates(cur["template_version"], default_name))
        queue.extend(v for v in cur.values() if isinstance(v, dict))
    return out


def _judge_report(value: Any) -> tuple[JudgeReport | None, str | None]:
    """The task's judge report (``configs.<task>.metadata.judge``) as the record, or why it is not one."""
    if value is None:
        return None, None
    try:
        return JudgeReport.from_dict(value), None
    except FieldError as e:
        return None, f"configs.metadata.judge is not a judge report ({e}): not used"


def _report_count(value: Any) -> int | None:
    """A report's count: an integer, or per dimension (LongReward) the largest; None when absent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        counts = [v for v in value.values() if isinstance(v, int) and not isinstance(v, bool)]
        return max(counts) if counts else None
    return None


def _task_judge(name: str, tr: TaskResult) -> dict[str, Any] | None:
    """Judge metadata of one task; None when nothing says it was judged."""
    kind = classify(name)[0]
    md = tr.metadata
    report, report_error = _judge_report(md.get("judge"))
    judge_md = {k: v for k, v in md.items() if "judge" in k or "template" in k}
    settings_md = {k: v for k, v in judge_md.items() if k != "judge"}  # --metadata judge_* / template keys
    jmetrics = {m: v for m, v in tr.metrics.items() if is_judge_metric(m)}
    sample_keys = set(tr.samples[0].values) if tr.samples else set()
    if (kind not in JUDGED_KINDS and not judge_md and not jmetrics and not tr.sample_judge
            and not any(is_judge_metric(k) for k in sample_keys)):
        return None
    entry: dict[str, Any] = {}
    if report_error:
        entry["report_error"] = report_error
    model = _model_str(md.get("judge_model")) or (report.model if report else None) or _model_str(tr.sample_judge)
    if model:
        entry["model"] = model
    tmpl = {**_templates_of(tr.sample_judge, name), **(report.templates if report else {}),
            **_templates_of(settings_md, name)}
    if tmpl:
        entry["templates"] = tmpl
    prim = primary_metric(tr, ("score", "longreward", "length_controlled_winrate", "win_rate"))
    flags = unscored_flags(tr, prim) if prim else None
    counts = (report.samples["judged"], report.unscored_items) if report else None
    if flags is not None:
        entry.update(items=len(flags), unscored=sum(flags), unscored_source="samples")
    elif counts is not None:
        entry.update(items=counts[0], unscored=counts[1], unscored_source="configs.metadata.judge.samples")
    elif tr.samples is not None and prim:
        uns = sum(1 for smp in tr.samples if smp.values.get(prim) is None)
        entry.update(items=len(tr.samples), unscored=uns, unscored_source=f"samples: missing/null {prim}")
    else:
        for key in ("judge_unscored", f"{prim}_unscored"):
            v = tr.metrics.get(key)
            if v is not None and tr.n:
                uns = int(round(v)) if tr.aggregated_by_sum(key) else int(round(v * tr.n))
                entry.update(items=tr.n, unscored=uns, unscored_source=f"results: {key}")
                break
    if report is not None:  # whose fault (issue 19): tampered items (scored as the minimum) and the causes
        tampered = _report_count(report.samples.get("tampered"))
        if tampered is not None:
            entry["tampered"] = tampered
        for key in ("causes", "unscored_reasons"):
            if isinstance(report.samples.get(key), dict):
                entry[key] = report.samples[key]
    costs = [smp.values.get("judge_cost_usd") for smp in tr.samples or [] if "judge_cost_usd" in smp.values]
    if costs:
        entry.update(cost_usd=float(sum(c for c in costs if c is not None)), cost_source="samples")
    elif report and report.total_cost() is not None:
        entry.update(cost_usd=report.total_cost(), cost_source="configs.metadata.judge")
    elif tr.metrics.get("judge_cost_usd") is not None:
        v = float(tr.metrics["judge_cost_usd"])  # type: ignore[arg-type]  # not None: tested above
        if tr.aggregation("judge_cost_usd") == "mean" and tr.n:
            v *= tr.n
        entry.update(cost_usd=v, cost_source="results: judge_cost_usd")
    extra = {m: v for m, v in jmetrics.items() if m not in ("judge_unscored", "judge_cost_usd")}
    if extra:
        entry["other_metrics"] = extra
    if judge_md:
        entry["metadata"] = judge_md
    return entry


def judge_info(run: Run) -> JudgeInfo:
    """Collect the judge metadata a run carries (see the reader's docstring for where it looks)."""
    info = JudgeInfo()
    models: list[str] = []
    cost_total, cost_found = 0.0, False
    for name, tr in run.tasks.items():
        entry = _task_judge(name, tr)
        if entry is None:
            continue
        if entry.get("model"):
            models.append(entry["model"])
        info.templates.update(entry.get("templates", {}))
        if "cost_usd" in entry:
            cost_total += float(entry["cost_usd"])
            cost_found = True
        if "items" in entry:
            info.judged_items += entry["items"]
            info.unscored += entry["unscored"]
        if "tampered" in entry:
            info.tampered = (info.tampered or 0) + entry["tampered"]
        info.per_task[name] = entry
    if info.per_task:
        info.sources.append("task results/samples/configs")
    for fname, side in run.sidecars.items():
        info.sources.append(fname)
        m = _model_str(_find(side, _SIDECAR_MODEL_KEYS))
        if m:
            models.append(m)
        elif _find(side, ("backend", "judge_backend")) == "embedded":
            models.append("SmolLM2-135M-Instruct (embedded)")
        for k, v in _templates_of(side, fname).items():
            info.templates.setdefault(k, v)
        if not cost_found:
            c = _find(side, _SIDECAR_COST_KEYS)
            if isinstance(c, (int, float)) and not isinstance(c, bool):
                cost_total, cost_found = float(c), True
        if not info.judged_items:
            u = _find(side, _SIDECAR_UNSCORED_KEYS)
            n = _find(side, ("judged_items", "judged", "items", "n", "total"))
            if isinstance(u, int) and isinstance(n, int) and n:
                info.unscored, info.judged_items = u, n
    info.models = sorted(set(models), key=models.index)
    info.cost_usd = cost_total if cost_found else None
    info.unscored_rate = info.unscored / info.judged_items if info.judged_items else None
    info.self_judged = is_self_judged(run, info.models)
    return info


# ----------------------------------------------------------------------------------------- building

@dataclass
class Board:
    sections: list[Section]
    runs: list[Run]
    judges: dict[str, JudgeInfo]
    iters: int
    seed: int
    level: float
    with_published: bool

    def cells_for(self, run_label: str) -> dict[str, Cell]:
        return {f"{s.key}.{k}": c for s in self.sections for r in s.rows if r.label == run_label
                for k, c in r.cells.items()}


def _fmt_judges(models: set[str]) -> str:
    return ", ".join(sorted(models)) or "unknown judge"


def build_board(runs: list[Run], with_published: bool = True, iters: int = DEFAULT_ITERS,
                seed: int = DEFAULT_SEED, level: float = 0.95, published_v2: lbv2.Published | None = None) -> Board:
    """Evaluate every column on every run, attach CIs, judge metadata and protocol notes.

    `published_v2`: the LongBench v2 published rows (default: the packaged file's)."""
    views = {r.label: stock.view(r) for r in runs}
    stock_secs = stock_sections(views)
    sections = standard_sections() + stock_secs
    extra = other_section(runs)
    if extra:
        sections.append(extra)
    for sec in stock_secs:
        sec.notes += stock_notes(sec, runs, views)
    judges = {r.label: judge_info(r) for r in runs}
    pub_rows = pub.published_rows() if with_published else {}
    v2_table = (published_v2 or lbv2.load_published()) if with_published else None
    if v2_table is not None:
        pub_rows["longbench_v2"] = lbv2.published_rows(v2_table)
    for run in runs:
        jinfo = judges[run.label]
        # what each section reads: the run, or its view (lm-eval's families, LongBench v2's breakdowns)
        ests: dict[Any, tuple[Run, Estimator]] = {None: (run, Estimator(run, iters, seed)),
                                                  stock.view: (views[run.label], Estimator(views[run.label], iters,
                                                                                           seed))}
        for sec in sections:
            if sec.view is not None and sec.view not in ests:
                v = sec.view(run)
                ests[sec.view] = (v, Estimator(v, iters, seed))
            src, est = ests[sec.view]
            cells: dict[str, Cell] = {}
            for col in sec.columns:
                tree, coverage = col.build(src)
                if tree is None:
                    if coverage:
                        cells[col.key] = Cell(None, coverage=coverage, notes=[f"needs all parts ({coverage})"])
                    continue
                e = est.estimate(tree)
                cell = Cell(e.value, n=e.n or None, unscored=e.unscored, coverage=coverage, notes=list(e.notes),
                            tasks=sorted({lf.task for lf in leaves(tree)}), pessimistic=e.pessimistic)
                if e.reps is not None:
                    cell.ci, cell.ci_method = percentile_ci(e.reps, level), "bootstrap"
                elif e.stderr is not None and e.value is not None:
                    z = 1.959963984540054 if level == 0.95 else _z(level)
                    cell.ci = (e.value - z * e.stderr, e.value + z * e.stderr)
                    cell.ci_method = "normal (lm-eval stderr)"
                proto = pub.PROTOCOL.get(col.key)
                if proto and e.value is not None:
                    cell.notes.extend(_protocol_diffs(run, tree, proto, jinfo, col.label))
                cells[col.key] = cell
            if any(c.value is not None for c in cells.values()):
                row = Row(run.label, "measured", cells, run=run, judge=jinfo,
                          section_judge=section_judge(jinfo, {t for c in cells.values() for t in c.tasks}))
                if jinfo.self_judged:
                    row.notes.append("judge is the evaluated model (self-judged)")
                if sec.family and stock.STOCK_BY_KEY[sec.family].lengths:
                    row.series = stock.series(src, stock.STOCK_BY_KEY[sec.family])
                sec.rows.append(row)
    for sec in sections:
        if sec.key == "longbench_v2" and not sec.rows:
            continue  # its published rows stand beside measured ones: no section for them alone
        for pr in pub_rows.get(sec.key, []):
            pjudges = sorted({pub.PROTOCOL[k]["judge"] for k in pr["values"] if pub.PROTOCOL.get(k, {}).get("judge")})
            sec.rows.append(Row(pr["label"], "published", {k: Cell(v) for k, v in pr["values"].items()},
                                notes=pr.get("notes", [pub.SOURCE]),
                                section_judge=None if sec.key == "longbench_v2" else
                                {"models": pjudges, "items": 0, "unscored": 0, "unscored_rate": None,
                                 "cost_usd": None, "templates": {}, "self_judged": False}))
        if sec.key == "longbench_v2" and v2_table is not None:
            sec.notes += v2_notes(v2_table)
        elif sec.key in pub_rows:
            sec.notes.append(f"Published rows: {pub.SOURCE}; {pub.GENERATION_NOTE}.")
            sec.notes += [f"{c.label} (published): {pub.PROTOCOL[c.key]['note']}." for c in sec.columns
                          if c.key in pub.PROTOCOL]
        for row in sec.rows:
            if row.source != "measured":
                continue
            diffs = sorted({n for c in row.cells.values() for n in c.notes if n.startswith("protocol:")})
            if diffs and sec.key in pub_rows:
                sec.notes.append(f"{row.label} differs from the paper's protocol: "
                                 + "; ".join(d[len("protocol: "):] for d in diffs))
    sections = [s for s in sections if s.rows]
    return Board(sections, runs, judges, iters, seed, level, with_published)


def v2_notes(table: lbv2.Published) -> list[str]:
    """The LongBench v2 section's footnote on its published rows: source, commit, protocol of each setting."""
    return ([f"published (Source column): values as published by the official LongBench v2 leaderboard, not "
             f"measured here; no interval, and never part of a measured row's interval or rank. Source: "
             f"{table.source}; {table.url} (commit {table.commit}; file {table.path.name})."]
            + [f"published {lbv2.SETTINGS[s]}: {note}." for s, note in table.protocol.items() if s in lbv2.SETTINGS]
            + [f"published {r['model']}: {r['note']}." for r in table.rows])


def section_judge(j: JudgeInfo, tasks: set[str]) -> dict[str, Any] | None:
    """Judge model(s), unscored count and cost over the tasks behind one section's cells; None if none judged."""
    per = [j.per_task[t] for t in sorted(tasks) if t in j.per_task]
    if not per:
        return None
    models = sorted({p["model"] for p in per if p.get("model")}) or list(j.models)
    items = sum(p.get("items", 0) for p in per)
    unscored = sum(p.get("unscored", 0) for p in per)
    costs = [p["cost_usd"] for p in per if p.get("cost_usd") is not None]
    templates = {k: v for p in per for k, v in p.get("templates", {}).items()}
    tampered = [p["tampered"] for p in per if "tampered" in p]
    out = {"models": models, "items": items, "unscored": unscored,
           "unscored_rate": unscored / items if items else None, "cost_usd": sum(costs) if costs else None,
           "templates": templates, "self_judged": j.self_judged}
    if tampered:  # results written before issue 19 report none: their rows render as before
        out["tampered"] = sum(tampered)
    return out


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def _protocol_diffs(run: Run, tree: Est, proto: dict[str, Any], jinfo: JudgeInfo, label: str) -> list[str]:
    """Where a measured cell departs from how the paper measured that column (judge, item count)."""
    out = []
    judges = {jinfo.per_task.get(lf.task, {}).get("model") for lf in leaves(tree)} - {None}
    if not judges:
        judges = set(jinfo.models)
    if proto.get("judge") and judges != {proto["judge"]}:
        # the ignore below: judge set: tested above
        out.append(f"protocol: judge {_fmt_judges(judges)} (paper: {proto['judge']})")  # type: ignore[arg-type]
    n = sum((run.tasks[t].n or 0) for t in {lf.task for lf in leaves(tree)})
    if proto.get("n") and n and n != proto["n"]:
        lim = run.limit
        out.append(f"protocol: {label}: {n} items (paper: {proto['n']})" + (f", --limit {lim}" if lim else ""))
    return out
