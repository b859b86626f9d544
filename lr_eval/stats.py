"""Resampling statistics, in one place: bootstrap CIs, paired bootstrap, sign-flip permutation test, Holm, and
the judge-agreement figures (agreement with a reference verdict, rank correlations, position consistency,
length bias, self-preference) with their bootstrap intervals.

Used by the leaderboards (cells, paired comparisons), by `lr-eval agreement` (LongReward vs a human choice)
and by `lr-eval judge-agreement` (any judge vs recorded reference verdicts).

Everything is seeded from a fixed seed and a stable hash of what is resampled,
so the same inputs give the same intervals on every machine and in every cell
that reuses a task (a category's interval and its datasets' intervals are
built from the same draws). Percentile intervals, because scores are bounded
and per-item distributions (0/1, judge ratings) are far from normal.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_ITERS = 2000
DEFAULT_SEED = 0
_CHUNK_ELEMS = 4_000_000  # resample in blocks so that iters x n never needs more than ~32 MB of indices


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    """A generator determined by the global seed and the identity of what is resampled."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def bootstrap_means(x: np.ndarray, iters: int, rng: np.random.Generator) -> np.ndarray:
    """`iters` bootstrap replicates of mean(x) (resampling items with replacement)."""
    x = np.asarray(x, dtype=float)
    return _replicates(len(x), iters, lambda k: x[rng.integers(0, len(x), size=(k, len(x)))].mean(axis=1))


def paired_bootstrap_diffs(d: np.ndarray, iters: int, rng: np.random.Generator) -> np.ndarray:
    """Replicates of mean(b - a) resampling *pairs* (same items in both runs): `d` holds b - a per item."""
    return bootstrap_means(d, iters, rng)


def sign_flip_null(d: np.ndarray, iters: int, rng: np.random.Generator) -> np.ndarray:
    """Null distribution of mean(d) when A/B labels are exchangeable within each pair (random sign per item)."""
    d = np.asarray(d, dtype=float)
    return _replicates(len(d), iters,
                       lambda k: ((rng.integers(0, 2, size=(k, len(d)), dtype=np.int8) * 2 - 1) * d).mean(axis=1))


def _replicates(n: int, iters: int, draw: Callable[[int], np.ndarray]) -> np.ndarray:
    """`iters` replicates from `draw(k)` (k replicates of n items at a time), in chunks that bound memory."""
    if n == 0:
        return np.full(iters, np.nan)
    out = np.empty(iters)
    step = max(1, _CHUNK_ELEMS // n)
    for start in range(0, iters, step):
        stop = min(iters, start + step)
        out[start:stop] = draw(stop - start)
    return out


def percentile_ci(reps: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile interval of bootstrap replicates; None when there is nothing to resample."""
    reps = np.asarray(reps, dtype=float)
    if reps.size == 0 or not np.all(np.isfinite(reps)):
        return None
    a = (1 - level) / 2
    lo, hi = np.quantile(reps, [a, 1 - a])
    return float(lo), float(hi)


def permutation_p(observed: float, null: np.ndarray) -> float | None:
    """Two-sided Monte-Carlo p-value with the +1 correction (never 0): (1 + #|T*| >= |T|) / (1 + R)."""
    null = np.asarray(null, dtype=float)
    if null.size == 0 or not np.all(np.isfinite(null)) or not np.isfinite(observed):
        return None
    hits = int(np.sum(np.abs(null) >= abs(observed) - 1e-12))
    return (1 + hits) / (1 + null.size)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (controls the family-wise error rate); None stays None."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    order = sorted(idx, key=lambda i: pvalues[i])  # type: ignore[arg-type,return-value]  # idx: p not None
    m = len(order)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))  # type: ignore[arg-type]  # idx: p not None
        out[i] = running
    return out


def bootstrap_ci(outcomes: Sequence[float], n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `outcomes` (resampling items); (nan, nan) when empty."""
    if len(outcomes) == 0:
        return float("nan"), float("nan")
    ci = percentile_ci(bootstrap_means(np.asarray(outcomes, dtype=float), n_boot, np.random.default_rng(seed)),
                       level)
    return ci if ci is not None else (float("nan"), float("nan"))


# ------------------------------------------------------------------------------------------------------------
# agreement of a judge with reference verdicts
# ------------------------------------------------------------------------------------------------------------

#: The `schema` of a `lr-eval judge-agreement` report (its `summary` is an AgreementSummary).
AGREEMENT_REPORT_SCHEMA = "lr-eval.judge-agreement/1"


def read_agreement_report(path: str | Path) -> dict[str, Any]:
    """A `lr-eval judge-agreement` report read back (`lr-eval judge-report`, `lr-leaderboard --judge-report`);
    InputError naming the file when it is not one."""
    from .jsonl import InputError, read_json

    report = read_json(path)
    if not isinstance(report, dict) or report.get("schema") != AGREEMENT_REPORT_SCHEMA:
        raise InputError(path, None, "schema",
                         f"not a judge-agreement report (expected schema {AGREEMENT_REPORT_SCHEMA})")
    return report


def model_key(name: str) -> str:
    """A model's name as the self-preference rule compares it: last path component, lower case
    ("org/Model-7B" and "model-7b" are the same model)."""
    return name.rstrip("/").split("/")[-1].strip().lower()


#: A pairwise verdict: the first answer ("a"), the second ("b") or neither (TIE). Unscored verdicts never get here.
TIE = "tie"
VERDICTS = ("a", "b", TIE)
#: A resampled figure needs this share of defined replicates (a correlation of a constant resample is undefined).
_MIN_DEFINED = 0.9


def _number(x: object, field: str) -> float:
    """A number read back from a report (bool is not one); TypeError names the field."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{field}: expected a number, got {x!r}")
    return float(x)


@dataclass(frozen=True)
class Estimate:
    """A figure, the number of items it rests on, and its percentile bootstrap interval (None: no interval)."""

    value: float | None
    n: int
    ci: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "n": self.n, "ci": None if self.ci is None else list(self.ci)}

    @staticmethod
    def from_dict(d: dict[str, object]) -> Estimate:
        ci, value = d.get("ci"), d.get("value")
        if ci is not None and not (isinstance(ci, list) and len(ci) == 2):
            raise TypeError("ci: expected [low, high] or null")
        return Estimate(None if value is None else _number(value, "value"), int(_number(d.get("n", 0), "n")),
                        None if ci is None else (_number(ci[0], "ci"), _number(ci[1], "ci")))


def estimate(n: int, statistic: Callable[[np.ndarray], float], iters: int, rng: np.random.Generator,
             level: float = 0.95) -> Estimate:
    """`statistic(indices)` on all `n` items, with a percentile interval from `iters` bootstrap resamples of the
    items. Resamples where the statistic is undefined (nan) are left out; with more than 10% of them, no
    interval. An undefined value on the items themselves is None."""
    if n == 0:
        return Estimate(None, 0)
    with np.errstate(all="ignore"):
        value = float(statistic(np.arange(n)))
        if not math.isfinite(value):
            return Estimate(None, n)
        if iters <= 0:
            return Estimate(value, n)
        reps = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(iters)], dtype=float)
    defined = reps[np.isfinite(reps)]
    return Estimate(value, n, percentile_ci(defined, level) if defined.size >= _MIN_DEFINED * iters else None)


def mean_estimate(x: Sequence[float] | np.ndarray, iters: int, rng: np.random.Generator,
                  level: float = 0.95) -> Estimate:
    """The mean of per-item values with its percentile bootstrap interval."""
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return Estimate(None, 0)
    return Estimate(float(x.mean()), int(x.size), percentile_ci(bootstrap_means(x, iters, rng), level)
                    if iters > 0 else None)


def _labels(v: Sequence[str]) -> np.ndarray:
    arr = np.asarray(list(v), dtype=object)
    bad = [x for x in arr if x not in VERDICTS]
    if bad:
        raise ValueError(f"pairwise verdicts are {', '.join(VERDICTS)}, not {bad[0]!r}")
    return arr


def pair_figures(reference: Sequence[str], judge: Sequence[str], iters: int, seed: int = DEFAULT_SEED,
                 key: str = "") -> dict[str, Estimate]:
    """Agreement of pairwise verdicts, item by item (both verdicts known):

    - ``agreement``: share of items where the judge gives the reference's verdict, ties included (3 classes);
    - ``agreement_without_ties``: the same over the items where neither gave a tie (FastChat's "without tie");
    - ``accuracy``: over the items the reference decided, 1 for its choice, 0.5 for a judge tie, 0 otherwise;
    - ``judge_ties`` / ``reference_ties``: tie rates.
    """
    r, j = _labels(reference), _labels(judge)
    if len(r) != len(j):
        raise ValueError(f"{len(r)} reference verdicts, {len(j)} judge verdicts")
    decided = r != TIE
    both = decided & (j != TIE)
    acc = np.where(j == r, 1.0, np.where(j == TIE, 0.5, 0.0))
    return {"agreement": mean_estimate((r == j).astype(float), iters, rng_for(seed, key, "agreement")),
            "agreement_without_ties": mean_estimate((r == j)[both].astype(float), iters,
                                                    rng_for(seed, key, "agreement_without_ties")),
            "accuracy": mean_estimate(acc[decided], iters, rng_for(seed, key, "accuracy")),
            "judge_ties": mean_estimate((j == TIE).astype(float), iters, rng_for(seed, key, "judge_ties")),
            "reference_ties": mean_estimate((r == TIE).astype(float), iters, rng_for(seed, key, "reference_ties"))}


def _corr(kind: str, x: np.ndarray, y: np.ndarray) -> float:
    from scipy import stats as sps

    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")  # undefined for a constant column (scipy warns and returns nan)
    fn = {"pearson": sps.pearsonr, "spearman": sps.spearmanr, "kendall": sps.kendalltau}[kind]
    return float(fn(x, y)[0])


#: Correlation kinds of score_figures: scipy's pearsonr, spearmanr and kendalltau (tau-b).
CORRELATIONS = ("pearson", "spearman", "kendall")


def _corr_of(kind: str, x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], float]:
    """The correlation of the items drawn (index array), as a statistic for :func:`estimate`."""
    return lambda i: _corr(kind, x[i], y[i])


def score_figures(reference: Sequence[float], judge: Sequence[float], iters: int, seed: int = DEFAULT_SEED,
                  key: str = "") -> dict[str, Estimate]:
    """Agreement of ratings on the same items (both known): Pearson, Spearman and Kendall tau-b (scipy), mean
    absolute difference, exact agreement, agreement within one point and the judge's mean offset (judge minus
    reference)."""
    r, j = np.asarray(reference, dtype=float), np.asarray(judge, dtype=float)
    if r.shape != j.shape:
        raise ValueError(f"{len(r)} reference scores, {len(j)} judge scores")
    out = {kind: estimate(len(r), _corr_of(kind, r, j), iters, rng_for(seed, key, kind)) for kind in CORRELATIONS}
    d = j - r
    out["mean_abs_diff"] = mean_estimate(np.abs(d), iters, rng_for(seed, key, "mean_abs_diff"))
    out["exact"] = mean_estimate((d == 0).astype(float), iters, rng_for(seed, key, "exact"))
    out["within_1"] = mean_estimate((np.abs(d) <= 1).astype(float), iters, rng_for(seed, key, "within_1"))
    out["mean_diff"] = mean_estimate(d, iters, rng_for(seed, key, "mean_diff"))
    return out


def _share(hit: np.ndarray, valid: np.ndarray) -> float:
    return float(hit[valid].mean()) if valid.any() else float("nan")


def length_bias_pairs(reference: Sequence[str], judge: Sequence[str], len_a: Sequence[float],
                      len_b: Sequence[float], iters: int, seed: int = DEFAULT_SEED) -> dict[str, Estimate]:
    """Does the judge prefer the longer answer more than the reference does? On the items whose answers differ
    in length: the share of the judge's decisive verdicts (not ties) that pick the longer answer, the same for
    the reference, and ``bias`` = judge share minus reference share (positive: the judge favours length more)."""
    r, j = _labels(reference), _labels(judge)
    la, lb = np.asarray(len_a, dtype=float), np.asarray(len_b, dtype=float)
    keep = la != lb
    r, j = r[keep], j[keep]
    return _picks(r, j, np.where(la[keep] > lb[keep], "a", "b"), iters, seed, "length")


def _picks(r: np.ndarray, j: np.ndarray, target: np.ndarray, iters: int, seed: int, name: str
           ) -> dict[str, Estimate]:
    """Share of the judge's decisive verdicts that pick the `target` side of each item, the same for the
    reference, and ``bias`` = judge share minus reference share (one resample of the items for all three)."""
    jt, rt, jd, rd = j == target, r == target, j != TIE, r != TIE
    n = len(target)
    return {"judge": estimate(n, lambda i: _share(jt[i], jd[i]), iters, rng_for(seed, name, "judge")),
            "reference": estimate(n, lambda i: _share(rt[i], rd[i]), iters, rng_for(seed, name, "reference")),
            "bias": estimate(n, lambda i: _share(jt[i], jd[i]) - _share(rt[i], rd[i]), iters,
                             rng_for(seed, name, "bias"))}


def length_bias_scores(reference: Sequence[float], judge: Sequence[float], length: Sequence[float], iters: int,
                       seed: int = DEFAULT_SEED) -> dict[str, Estimate]:
    """Ratings: Spearman correlation of the judge's ratings with the judged text's length, the same for the
    reference, and ``bias`` = their difference (positive: the judge rewards length more than the reference)."""
    r, j, n = np.asarray(reference, dtype=float), np.asarray(judge, dtype=float), np.asarray(length, dtype=float)
    return {"judge": estimate(len(r), lambda i: _corr("spearman", j[i], n[i]), iters,
                              rng_for(seed, "length", "judge")),
            "reference": estimate(len(r), lambda i: _corr("spearman", r[i], n[i]), iters,
                                  rng_for(seed, "length", "reference")),
            "bias": estimate(len(r), lambda i: _corr("spearman", j[i], n[i]) - _corr("spearman", r[i], n[i]), iters,
                             rng_for(seed, "length", "bias"))}


def self_preference_pairs(reference: Sequence[str], judge: Sequence[str], own: Sequence[str | None], iters: int,
                          seed: int = DEFAULT_SEED) -> dict[str, Estimate]:
    """On the items where one answer is the judge's own model's (`own`: "a", "b" or None): the share of the
    judge's decisive verdicts that pick its own answer, the same for the reference, and ``bias`` = judge minus
    reference (positive: the judge prefers itself more than the reference does)."""
    r, j = _labels(reference), _labels(judge)
    o = np.asarray(list(own), dtype=object)
    keep = o != None  # noqa: E711 (elementwise)
    return _picks(r[keep], j[keep], o[keep], iters, seed, "self")


def self_preference_scores(reference: Sequence[float], judge: Sequence[float], own: Sequence[bool], iters: int,
                           seed: int = DEFAULT_SEED) -> dict[str, Estimate]:
    """Ratings: the judge's mean offset from the reference (judge minus reference) on its own model's items, on
    the other items, and ``bias`` = own minus other (positive: the judge rates itself up). Undefined (None)
    without items of both kinds."""
    d = np.asarray(judge, dtype=float) - np.asarray(reference, dtype=float)
    o = np.asarray(list(own), dtype=bool)

    def mean_where(i: np.ndarray, mask: np.ndarray) -> float:
        return float(d[i][mask[i]].mean()) if mask[i].any() else float("nan")

    n = len(d)
    return {"own": mean_estimate(d[o], iters, rng_for(seed, "self", "own")),
            "other": mean_estimate(d[~o], iters, rng_for(seed, "self", "other")),
            "bias": estimate(n if o.any() and (~o).any() else 0, lambda i: mean_where(i, o) - mean_where(i, ~o),
                             iters, rng_for(seed, "self", "bias"))}


def position_consistency(first: Sequence[str], second: Sequence[str], iters: int,
                         seed: int = DEFAULT_SEED) -> Estimate:
    """Share of items judged in both orders where the two verdicts (mapped back to the same answers) agree."""
    a, b = _labels(first), _labels(second)
    return mean_estimate((a == b).astype(float), iters, rng_for(seed, "position"))


def length_bucket_label(length: float, edges: Sequence[float]) -> str:
    """The bucket of `length` among ascending `edges`: "<e0", "e0-e1", ..., ">=ek" (lower bound inclusive)."""
    def fmt(x: float) -> str:
        return f"{x / 1000:g}k" if x >= 1000 and x % 100 == 0 else f"{x:g}"

    if not edges or length < edges[0]:
        return f"<{fmt(edges[0])}" if edges else "all"
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if lo <= length < hi:
            return f"{fmt(lo)}-{fmt(hi)}"
    return f">={fmt(edges[-1])}"


def bucket_labels(edges: Sequence[float]) -> list[str]:
    """All bucket labels of `edges`, in order."""
    if not edges:
        return ["all"]
    return [length_bucket_label(edges[0] - 1, edges), *(length_bucket_label(e, edges) for e in edges)]


@dataclass(frozen=True)
class AgreementSummary:
    """A judge-agreement report in one line (`lr-eval judge-agreement` writes it, the leaderboard's Judge table
    reads it): who judged, against which reference, how many items, the headline figures and the cost."""

    judge: str
    reference: str
    kind: str                       # "scores" (ratings) or "pairs" (choices)
    compared: int
    left_out: int
    figures: dict[str, Estimate]
    cost_usd: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {"judge": self.judge, "reference": self.reference, "kind": self.kind, "compared": self.compared,
                "left_out": self.left_out, "figures": {k: v.to_dict() for k, v in self.figures.items()},
                "cost_usd": self.cost_usd}

    @staticmethod
    def from_dict(d: dict[str, object]) -> AgreementSummary:
        """Raises KeyError/TypeError/ValueError on a malformed summary (the caller names the file)."""
        figures = d["figures"]
        if not isinstance(figures, dict):
            raise TypeError("figures: expected an object")
        cost = d.get("cost_usd")
        return AgreementSummary(str(d["judge"]), str(d["reference"]), str(d["kind"]),
                                int(_number(d["compared"], "compared")), int(_number(d["left_out"], "left_out")),
                                {str(k): Estimate.from_dict(v) for k, v in figures.items()},
                                None if cost is None else _number(cost, "cost_usd"))
