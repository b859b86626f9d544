"""Paired comparison of two runs on the same items: difference, paired-bootstrap CI, sign-flip permutation p-value.

Pairing matters: two models answering the same documents share the documents'
difficulty, so the paired test is far more sensitive than comparing two
independent intervals. Items are matched on ``(doc_hash, doc_id)`` when both
runs logged ``doc_hash`` (the same document content), else on ``doc_id``; items
unscored in either run are dropped and counted. For a category (mean of
datasets) the statistic is the mean of the per-dataset mean differences, and
resampling/sign flips happen within each dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .board import Est, Leaf, Mean, detect_scale, leaves, primary_metric, sample_bucket, standard_sections
from .reader import Run
from lr_eval.stats import (
    DEFAULT_SEED,
    holm,
    paired_bootstrap_diffs,
    percentile_ci,
    permutation_p,
    rng_for,
    sign_flip_null,
)


@dataclass
class PairedLeaf:
    a: np.ndarray
    b: np.ndarray
    only_a: int
    only_b: int
    dropped_unscored: int
    keyed_on: str


@dataclass
class Comparison:
    """One benchmark's paired result: B − A over the paired items."""

    name: str
    section: str
    n_paired: int = 0
    mean_a: float | None = None
    mean_b: float | None = None
    diff: float | None = None
    ci: tuple[float, float] | None = None
    p: float | None = None
    p_holm: float | None = None
    only_a: int = 0
    only_b: int = 0
    dropped_unscored: int = 0
    keyed_on: str = ""
    skipped: str | None = None
    tasks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _scaled(run: Run, leaf: Leaf, pair_on: str = "auto") -> tuple[dict[tuple, float | None], str] | str:
    """Per-item values in reported units keyed for pairing, or the reason they cannot be used."""
    tr = run.tasks.get(leaf.task)
    if tr is None:
        return f"{leaf.task} not in {run.label}"
    if tr.samples is None:
        return f"{leaf.task}: no samples logged in {run.label} (run lm-eval with --log_samples)"
    vals = [s.values.get(leaf.metric) for s in tr.samples]
    reported = tr.metrics.get(leaf.metric)
    scale = detect_scale(vals, reported) if reported is not None else 1.0
    if scale is None:
        return f"{leaf.task}/{leaf.metric}: the reported value is not a mean of per-sample values"
    use_hash = pair_on != "doc_id" and all(s.doc_hash for s in tr.samples)
    if pair_on == "doc_hash" and not use_hash:
        return f"{leaf.task}: {run.label} logged no doc_hash (pair on doc_id instead)"
    out: dict[tuple, float | None] = {}
    for s, v in zip(tr.samples, vals, strict=True):
        if leaf.bucket is not None and sample_bucket(s) != leaf.bucket:
            continue
        out[s.key(use_hash)] = None if v is None else v * scale
    return out, ("doc_hash+doc_id" if use_hash else "doc_id")


def pair_leaf(a: Run, b: Run, leaf: Leaf, pair_on: str = "auto") -> PairedLeaf | str:
    """Align one leaf's items across the two runs (`pair_on`: auto, doc_hash or doc_id)."""
    ra, rb = _scaled(a, leaf, pair_on), _scaled(b, leaf, pair_on)
    if isinstance(ra, str):
        return ra
    if isinstance(rb, str):
        return rb
    (va, ka), (vb, kb) = ra, rb
    if ka != kb:  # one run lacks doc_hash: fall back to doc_id on both sides
        va = {k[-1:]: v for k, v in va.items()}
        vb = {k[-1:]: v for k, v in vb.items()}
        ka = "doc_id"
    common = [k for k in va if k in vb]
    both = [k for k in common if va[k] is not None and vb[k] is not None]
    return PairedLeaf(np.array([va[k] for k in both], dtype=float), np.array([vb[k] for k in both], dtype=float),
                      only_a=len(va) - len(common), only_b=len(vb) - len(common),
                      dropped_unscored=len(common) - len(both), keyed_on=ka)


def compare_est(a: Run, b: Run, est: Est, name: str, section: str, iters: int, seed: int,
                level: float = 0.95, pair_on: str = "auto") -> Comparison:
    """Paired difference B − A of one estimator tree (leaf or mean of leaves)."""
    if isinstance(est, Mean) and est.skip_missing:  # e.g. a length bucket: only datasets with items in it
        kept = []
        for c in est.children:
            p = pair_leaf(a, b, c, pair_on) if isinstance(c, Leaf) else None
            if not (isinstance(p, PairedLeaf) and len(p.a) == 0):
                kept.append(c)
        est = kept[0] if len(kept) == 1 else Mean(tuple(kept)) if kept else est
    cmp = Comparison(name, section, tasks=sorted({lf.task for lf in leaves(est)}))
    paired: dict[Leaf, PairedLeaf] = {}
    for lf in leaves(est):
        p = pair_leaf(a, b, lf, pair_on)
        if isinstance(p, str):
            cmp.skipped = p
            return cmp
        if len(p.a) == 0:
            why = "" if p.dropped_unscored else (
                "; no document in common: the runs saw different documents, or the same ones with different "
                "fields (doc_hash covers the whole doc); --pair-on doc_id pairs by position" if p.keyed_on != "doc_id"
                else "")
            cmp.skipped = f"{lf.task}: no paired scored items{why}"
            return cmp
        paired[lf] = p

    def combine(e: Est, fn: Any) -> Any:
        if isinstance(e, Leaf):
            return fn(e, paired[e])
        return np.mean([combine(c, fn) for c in e.children], axis=0)

    cmp.mean_a = float(combine(est, lambda _lf, p: p.a.mean()))
    cmp.mean_b = float(combine(est, lambda _lf, p: p.b.mean()))
    cmp.diff = float(combine(est, lambda _lf, p: (p.b - p.a).mean()))
    reps = combine(est, lambda lf, p: paired_bootstrap_diffs(p.b - p.a, iters, rng_for(seed, "paired", lf.key())))
    null = combine(est, lambda lf, p: _null(p.b - p.a, iters, seed, lf))
    cmp.ci = percentile_ci(reps, level)
    cmp.p = permutation_p(cmp.diff, null)
    ps = list(paired.values())
    cmp.n_paired = sum(len(p.a) for p in ps)
    cmp.only_a, cmp.only_b = sum(p.only_a for p in ps), sum(p.only_b for p in ps)
    cmp.dropped_unscored = sum(p.dropped_unscored for p in ps)
    cmp.keyed_on = "/".join(sorted({p.keyed_on for p in ps}))
    return cmp


def _null(d: np.ndarray, iters: int, seed: int, lf: Leaf) -> np.ndarray:
    return sign_flip_null(d, iters, rng_for(seed, "signflip", lf.key()))


def compare_runs(a: Run, b: Run, iters: int = 10_000, seed: int = DEFAULT_SEED, per_task: bool = False,
                 level: float = 0.95, pair_on: str = "auto") -> list[Comparison]:
    """Every benchmark column both runs measured (and, with `per_task`, every shared task), Holm-adjusted."""
    out: list[Comparison] = []
    seen: set[Est] = set()
    for sec in standard_sections():
        for col in sec.columns:
            ta, _ = col.build(a)
            tb, _ = col.build(b)
            if ta is None or tb is None:
                continue
            est = _shared(ta, tb)
            if est is None or est in seen:
                continue
            seen.add(est)
            out.append(compare_est(a, b, est, f"{sec.title.split(' (')[0]}: {col.label}", sec.key, iters, seed,
                                   level, pair_on))
    if per_task:
        for t in sorted(set(a.tasks) & set(b.tasks)):
            m = primary_metric(a.tasks[t])
            if m and m in b.tasks[t].metrics:
                lf = Leaf(t, m)
                if lf not in seen:
                    out.append(compare_est(a, b, lf, f"task {t} ({m})", "task", iters, seed, level, pair_on))
    adj = holm([c.p for c in out])
    for c, p in zip(out, adj, strict=True):
        c.p_holm = p
    return out


def _shared(ta: Est, tb: Est) -> Est | None:
    """The part of a column both runs have (e.g. the datasets of a category present in both)."""
    if ta == tb:
        return ta
    la, lb = set(leaves(ta)), set(leaves(tb))
    common = [lf for lf in leaves(ta) if lf in lb and lf in la]
    if not common:
        return None
    if isinstance(ta, Mean) and all(isinstance(c, Leaf) for c in ta.children):
        return common[0] if len(common) == 1 else Mean(tuple(common))
    return None


def _f(x: float | None, nd: int = 2) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def _p(x: float | None) -> str:
    return "—" if x is None else ("<0.001" if x < 0.001 else f"{x:.3f}")


def format_comparisons(a: Run, b: Run, comps: list[Comparison], iters: int, seed: int, alpha: float = 0.05,
                       level: float = 0.95) -> str:
    """Plain-text report: one line per benchmark, then how items were paired and the multiple-comparison note."""
    head = ["benchmark", "n paired", f"A={a.label}", f"B={b.label}", "B−A", f"{int(level * 100)}% CI", "p", "p (Holm)"]
    rows, skipped = [], []
    for c in comps:
        if c.skipped:
            skipped.append(f"  {c.name}: {c.skipped}")
            rows.append([c.name, "—", "—", "—", "—", "not tested (below)", "", ""])
            continue
        ci = f"[{_f(c.ci[0])}, {_f(c.ci[1])}]" if c.ci else "—"
        rows.append([c.name, str(c.n_paired), _f(c.mean_a), _f(c.mean_b), f"{c.diff:+.2f}", ci, _p(c.p), _p(c.p_holm)])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    tested = [c for c in comps if not c.skipped]
    if skipped:
        lines += ["", "Not tested:", *skipped]
    lines.append("")
    lines.append(f"A and B are the means over the paired items only (may differ from the full-run scores). "
                 f"CI: paired bootstrap ({iters} resamples of item pairs, percentile); p: two-sided sign-flip "
                 f"permutation test ({iters} permutations, +1 corrected); seed {seed}.")
    if tested:
        keyed = sorted({c.keyed_on for c in tested})
        extra = sum(c.only_a + c.only_b for c in tested)
        dropped = sum(c.dropped_unscored for c in tested)
        lines.append(f"Paired on {', '.join(keyed)}; items only in one run: {extra}; pairs dropped because "
                     f"unscored in either run: {dropped} (counts summed over the benchmarks above).")
    if len(tested) > 1:
        sig_raw = sum(1 for c in tested if c.p is not None and c.p < alpha)
        sig_holm = sum(1 for c in tested if c.p_holm is not None and c.p_holm < alpha)
        lines.append(f"Multiple comparisons: {len(tested)} tests (nested: categories share items with their "
                     f"datasets). At alpha={alpha}, about {alpha * len(tested):.1f} false positives are expected "
                     f"by chance without correction; {sig_raw} raw vs {sig_holm} Holm-Bonferroni-adjusted "
                     f"p-values are below alpha. Report the adjusted ones.")
    return "\n".join(lines)
