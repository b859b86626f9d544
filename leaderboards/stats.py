"""Resampling statistics for leaderboard cells: bootstrap CIs, paired bootstrap, sign-flip permutation test, Holm.

Everything is seeded from a fixed seed and a stable hash of what is resampled,
so the same inputs give the same intervals on every machine and in every cell
that reuses a task (a category's interval and its datasets' intervals are
built from the same draws). Percentile intervals, because scores are bounded
and per-item distributions (0/1, judge ratings) are far from normal.
"""

from __future__ import annotations

from collections.abc import Callable

import zlib
from collections.abc import Sequence

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
