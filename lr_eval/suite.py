"""The benchmark suite, defined once: families of tasks, their datasets, categories and primary metric.

Task generation (``tasks/configs/_generate.py``), the task modules (LongBench categories, LongBench-E
length buckets) and the leaderboard (its sections and how it recognises a task from its name) all read
this table, so adding a family is one :class:`Family` row in :data:`FAMILIES` (see the marked place).

A family's tasks are named ``<prefix>_<dataset>`` (one task per dataset; its category groups are
``<prefix>_<category>`` and its suite group ``<prefix>``), or ``<prefix>`` alone for a family without
datasets. :func:`classify` maps a task name back to (family, dataset); the ``longreward_`` prefix is
optional there (except for lm-eval's own LongBench tasks, :data:`LM_EVAL_OWN`, which are not ours), ``-`` and
``_`` are equal and case is ignored, and a family may list other spellings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: The scales a primary metric is reported on: percent-like scores, MT-Bench's 1-10 grades, LongReward's 0-10.
Scale = Literal["0-100", "1-10", "0-10"]
SCALES: dict[str, tuple[float, float]] = {"0-100": (0.0, 100.0), "1-10": (1.0, 10.0), "0-10": (0.0, 10.0)}

#: Category key -> label, in the order the tables show them (LongBench v1's own grouping).
CATEGORY_LABELS: dict[str, str] = {
    "single_doc_qa": "Single-Doc QA",
    "multi_doc_qa": "Multi-Doc QA",
    "summarization": "Summarization",
    "few_shot": "Few-shot",
    "synthetic": "Synthetic",
    "code": "Code",
}

#: LongBench-E length buckets (of a document's ``length`` field), in order, with their exclusive upper bounds.
LENGTH_BUCKET_BOUNDS: tuple[tuple[str, float], ...] = (("0-4k", 4000), ("4-8k", 8000), ("8k+", float("inf")))
LENGTH_BUCKETS: tuple[str, ...] = tuple(name for name, _ in LENGTH_BUCKET_BOUNDS)


def length_bucket(length: float) -> str:
    """LongBench-E bucket of a sample's ``length`` field: <4000, 4000-7999, >=8000."""
    return next(name for name, bound in LENGTH_BUCKET_BOUNDS if length < bound)


@dataclass(frozen=True)
class Dataset:
    """One dataset of a family: its name (as in the task name), category and language (en, zh or code)."""

    name: str
    category: str | None = None
    language: str = "en"


@dataclass(frozen=True)
class Family:
    """A family of tasks that share a protocol and a primary metric.

    `key` names the family; `kind` is the leaderboard's short name for it (default: the key); `section`
    the leaderboard section that shows it (a section the board does not lay out itself becomes one column
    per dataset). `judged` says an LLM judge produces its scores. `aliases` are other task-name spellings
    (``{dataset}`` is replaced) that :func:`classify` accepts, e.g. names other harnesses use.
    """

    key: str
    title: str
    prefix: str
    metric: str
    scale: Scale
    datasets: tuple[Dataset, ...] = ()
    judged: bool = False
    length_buckets: tuple[str, ...] = ()
    section: str = ""
    kind: str = ""
    aliases: tuple[str, ...] = ()
    source: str = ""
    _by_name: dict[str, Dataset] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"family {self.key}: unknown scale {self.scale!r}")
        object.__setattr__(self, "kind", self.kind or self.key)
        object.__setattr__(self, "section", self.section or self.key)
        self._by_name.update({d.name: d for d in self.datasets})

    @property
    def names(self) -> tuple[str, ...]:
        """The dataset names, in the family's order."""
        return tuple(d.name for d in self.datasets)

    def task(self, dataset: str | None = None) -> str:
        """The task name of one dataset (or the family's only task)."""
        if dataset is None:
            return self.prefix
        if dataset not in self._by_name:
            raise ValueError(f"{dataset!r} is not a dataset of {self.key}: {', '.join(self.names)}")
        return f"{self.prefix}_{dataset}"

    def tasks(self) -> tuple[str, ...]:
        """Every task of the family (one per dataset, or the family's only task)."""
        return tuple(self.task(d) for d in self.names) if self.datasets else (self.prefix,)

    def categories(self) -> dict[str, tuple[str, ...]]:
        """Category -> its datasets of this family, categories in :data:`CATEGORY_LABELS` order."""
        out = {c: tuple(d.name for d in self.datasets if d.category == c) for c in CATEGORY_LABELS}
        return {c: names for c, names in out.items() if names}

    @property
    def decimals(self) -> int:
        """Decimals a table shows for this family's metric: 1 on the 0-100 scale, 2 on the 10-point scales."""
        return 1 if self.scale == "0-100" else 2


def _longbench(*names: str, category: str, zh: tuple[str, ...] = (), language: str = "en") -> tuple[Dataset, ...]:
    return tuple(Dataset(n, category, "zh" if n in zh else language) for n in names)


#: The 21 LongBench v1 datasets in the official order, with the benchmark's six categories.
LONGBENCH_DATASETS: tuple[Dataset, ...] = (
    *_longbench("narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh", category="single_doc_qa",
                zh=("multifieldqa_zh",)),
    *_longbench("hotpotqa", "2wikimqa", "musique", "dureader", category="multi_doc_qa", zh=("dureader",)),
    *_longbench("gov_report", "qmsum", "multi_news", "vcsum", category="summarization", zh=("vcsum",)),
    *_longbench("trec", "triviaqa", "samsum", "lsht", category="few_shot", zh=("lsht",)),
    *_longbench("passage_count", "passage_retrieval_en", "passage_retrieval_zh", category="synthetic",
                zh=("passage_retrieval_zh",)),
    *_longbench("lcc", "repobench-p", category="code", language="code"),
)
#: The 13 datasets that LongBench-E has (uniform length distribution), a subset of v1 in the same order.
LONGBENCH_E_NAMES: frozenset[str] = frozenset({
    "qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "gov_report", "multi_news", "trec", "triviaqa",
    "samsum", "passage_count", "passage_retrieval_en", "lcc", "repobench-p",
})


def _of(categories: tuple[str, ...], names: frozenset[str] | None = None) -> tuple[Dataset, ...]:
    return tuple(d for d in LONGBENCH_DATASETS if d.category in categories and (names is None or d.name in names))


_QA = ("single_doc_qa", "multi_doc_qa")
_ALL = tuple(CATEGORY_LABELS)
_LONGBENCH = "THUDM/LongBench (Bai et al., 2024)"
_INFINITEBENCH = "OpenBMB/InfiniteBench (Zhang et al., 2024)"

#: Every family, in the order the leaderboard shows their sections.
FAMILIES: tuple[Family, ...] = (
    Family("longbench_chat", "LongBench-Chat", "longreward_longbench_chat", "score", "0-100", judged=True,
           section="main", kind="chat", source="THUDM/LongAlign: LongBench-Chat, judge 1-10, reported x 10"),
    Family("longbench_judged", "LongBench (judged)", "longreward_longbench_judged", "score", "0-100",
           _of(("single_doc_qa", "multi_doc_qa", "summarization")), judged=True, section="main", kind="judged",
           source=f"{_LONGBENCH}; the LongReward paper's judged protocol"),
    Family("mtbench", "MT-Bench", "longreward_mtbench", "score", "1-10", judged=True, section="short",
           aliases=("mt_bench", "mtbench"),
           source="lm-sys/FastChat llm_judge: 80 two-turn questions, single-answer grading 1-10"),
    Family("alpacaeval2", "AlpacaEval 2", "longreward_alpacaeval2", "length_controlled_winrate", "0-100",
           judged=True, section="short", kind="alpaca",
           aliases=("alpaca_eval", "alpaca_eval2", "alpaca_eval_2", "alpacaeval"), source="tatsu-lab/alpaca_eval"),
    Family("longbench", "LongBench (official metrics)", "longreward_longbench", "score", "0-100", _of(_ALL),
           kind="official", source=_LONGBENCH),
    Family("longbench_e", "LongBench-E", "longreward_longbench_e", "score", "0-100",
           _of(_ALL, LONGBENCH_E_NAMES), length_buckets=LENGTH_BUCKETS, kind="e",
           aliases=("longreward_longbench_{dataset}_e",), source=_LONGBENCH),
    Family("longqa", "LongReward as a metric", "longreward_longqa", "longreward", "0-10", judged=True),
    Family("longqa_longbench", "LongReward on LongBench QA", "longreward_longqa_longbench", "longreward", "0-10",
           _of(_QA), judged=True, section="longqa_lb", kind="longqa_lb", source=_LONGBENCH),
    Family("longqa_infinitebench", "LongReward on InfiniteBench En.QA", "longreward_longqa_infinitebench_enqa",
           "longreward", "0-10", judged=True, source=_INFINITEBENCH),
    Family("infinitebench_enqa", "InfiniteBench En.QA", "longreward_infinitebench_enqa", "score", "0-100",
           source=f"{_INFINITEBENCH}: its prompt, truncation and token F1"),
    Family("cotqa", "Long-context QA (SubEM)", "longreward_cotqa", "sub_em", "0-100",
           (*(d for d in LONGBENCH_DATASETS if d.name in ("musique", "2wikimqa", "multifieldqa_en", "narrativeqa")),
            Dataset("longbook_qa_eng")),
           section="cotqa", source=f"NEUIR/LongMab-PO's CoT-answer protocol on {_LONGBENCH} and {_INFINITEBENCH}"),
    Family("longbench_v2", "LongBench v2", "longreward_longbench_v2", "overall", "0-100",
           (Dataset("plain"), Dataset("cot"), Dataset("no_context"), Dataset("rag")), section="longbench_v2",
           source="THUDM/LongBench (Bai et al., 2025): LongBench v2's pred.py and result.py, generative, "
                  "answer parsed from 'The correct answer is (X)'"),
    Family("longrewardbench", "Long-RewardBench (the model as the judge)", "longreward_longrewardbench", "acc",
           "0-100", source="LCM-Lab/Long-RM (Tang et al., 2025): its generative-judge prompts and compare_shuffled "
                           "accuracy, pairs in both orders"),
    Family("longrewardbench_longreward", "Long-RewardBench (LongReward as the reward)",
           "longreward_longrewardbench_longreward", "acc", "0-100", judged=True,
           source="LCM-Lab/Long-RM (Tang et al., 2025): the higher LongReward reward preferred"),
    # ---- New families go here. A section the board has no layout for shows one column per dataset (per
    # ---- one-task family) and, when all are on one scale, their mean.
)
FAMILY: dict[str, Family] = {f.key: f for f in FAMILIES}
if len(FAMILY) != len(FAMILIES) or len({f.kind for f in FAMILIES}) != len(FAMILIES):
    raise ValueError("suite: family keys and kinds must be unique")


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


def task_index(families: tuple[Family, ...]) -> dict[str, tuple[Family, Dataset | None]]:
    """Normalised task name (and alias) -> (family, dataset); a name claimed by two families is an error."""
    index: dict[str, tuple[Family, Dataset | None]] = {}
    for fam in families:
        for ds in fam.datasets or (None,):
            names = [fam.task(ds.name if ds else None)]
            names += [a.format(dataset=ds.name) if ds else a for a in fam.aliases]
            for name in names:
                if index.setdefault(_norm(name), (fam, ds)) != (fam, ds):
                    raise ValueError(f"suite: task name {name!r} belongs to two families")
    return index


_TASKS = task_index(FAMILIES)

#: lm-eval 0.4.13's own LongBench v1 and LongBench-E tasks (``longbench_<dataset>``, ``longbench_<dataset>_e``,
#: in the official order): the same datasets as ours under another protocol (lm-eval's prompts, its 0-1 scores),
#: so these names never take the optional ``longreward_`` prefix. They are the only lm-eval 0.4.13 task names
#: that would (checked against lm-eval's task folder by tests/test_suite.py).
LM_EVAL_OWN: tuple[str, ...] = (
    *(f"longbench_{d.name}" for d in LONGBENCH_DATASETS),
    *(f"longbench_{d.name}_e" for d in LONGBENCH_DATASETS if d.name in LONGBENCH_E_NAMES))
_LM_EVAL_OWN = frozenset(_norm(n) for n in LM_EVAL_OWN)


def classify(task: str) -> tuple[Family, Dataset | None] | None:
    """(family, dataset) of a task name (dataset None for a one-task family), or None when not in the suite
    (lm-eval's own LongBench tasks, :data:`LM_EVAL_OWN`, included)."""
    name = _norm(task)
    hit = _TASKS.get(name)
    if hit is None and not name.startswith("longreward_") and name not in _LM_EVAL_OWN:
        hit = _TASKS.get("longreward_" + name)
    return hit
