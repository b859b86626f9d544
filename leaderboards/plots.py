"""PNG and SVG plots of a board (matplotlib, imported lazily: the tables do not need it).

Per-benchmark bars with their confidence intervals (one panel per section,
measured rows only: published rows have no intervals), score by context-length
bucket (LongBench-E), and for lm-eval's RULER and BABILong score by length, one
panel per model (each task a thin line, the family's score bold with its
interval). SVGs are written without a date and with a
fixed hash salt so that regenerating the committed example gives identical files.
"""

from __future__ import annotations

from pathlib import Path

from . import stock
from .board import Board, Section


def _length_sections(board: Board) -> list[Section]:
    """Sections of lm-eval's families read by length (RULER, BABILong) that have a measured row."""
    return [s for s in board.sections if s.family and stock.STOCK_BY_KEY[s.family].lengths
            and any(r.source == "measured" and r.series for r in s.rows)]


def _measured_panels(board: Board) -> list[Section]:
    by_length = {s.key for s in _length_sections(board)}
    return [s for s in board.sections if s.key != "longbench_e" and s.key not in by_length
            and any(r.source == "measured" and any(c.value is not None for c in r.cells.values()) for r in s.rows)]


def make_plots(board: Board, out_dir: Path, formats: tuple[str, ...] = ("png", "svg")) -> dict[str, Path]:
    """Write the figures; returns {figure name: svg path (or first format's path)}. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "lr-leaderboard", "svg.fonttype": "none", "font.size": 9})
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    panels = _measured_panels(board)
    if panels:
        fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.9 * len(panels)), squeeze=False)
        for ax, sec in zip(axes[:, 0], panels, strict=True):
            _bars(ax, sec)
        fig.tight_layout()
        written["benchmarks"] = _save(fig, out_dir / "benchmarks", formats)
        plt.close(fig)
    sec_e = next((s for s in board.sections if s.key == "longbench_e"), None)
    if sec_e and any(r.source == "measured" for r in sec_e.rows):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        _buckets(ax, sec_e)
        fig.tight_layout()
        written["length_buckets"] = _save(fig, out_dir / "length_buckets", formats)
        plt.close(fig)
    for sec in _length_sections(board):
        rows = [r for r in sec.rows if r.source == "measured" and r.series]
        fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows) + 2.6, 3.6), squeeze=False, sharey=True)
        for ax, row in zip(axes[0], rows, strict=True):
            _by_length(ax, sec, row, board.level)
        legend: dict[str, object] = {}  # one legend beside the panels, every task any panel has
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                legend.setdefault(lab, h)
        labels, handles = list(legend), list(legend.values())
        fig.legend(handles, labels, fontsize=6, loc="center right", ncol=1 if len(labels) <= 14 else 2,
                   frameon=False)
        fig.tight_layout(rect=(0, 0, 1 - 2.4 / (4.2 * len(rows) + 2.6), 1))
        written[f"{sec.title}: score by length, per model"] = _save(fig, out_dir / f"{sec.family}_by_length",
                                                                     formats)
        plt.close(fig)
    return written


def _save(fig, stem: Path, formats: tuple[str, ...]) -> Path:
    paths = []
    for fmt in formats:
        p = stem.with_suffix(f".{fmt}")
        meta = {"Date": None} if fmt == "svg" else {"Software": None} if fmt == "png" else {}
        fig.savefig(p, format=fmt, metadata=meta, dpi=150)
        paths.append(p)
    return next((p for p in paths if p.suffix == ".svg"), paths[0])


def _bars(ax, sec: Section) -> None:
    rows = [r for r in sec.rows if r.source == "measured"]
    cols = [c for c in sec.columns if any(r.cells.get(c.key) and r.cells[c.key].value is not None for r in rows)]
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        xs, ys, ex, ey, lo, hi = [], [], [], [], [], []
        for j, col in enumerate(cols):
            c = row.cells.get(col.key)
            if c is None or c.value is None:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(c.value)
            if c.ci:  # no bar for a missing interval (corpus-level metrics): absence is not "zero width"
                ex.append(xs[-1])
                ey.append(c.value)
                lo.append(c.value - c.ci[0])
                hi.append(c.ci[1] - c.value)
        ax.bar(xs, ys, width * 0.92, label=row.label)
        if ex:
            ax.errorbar(ex, ey, yerr=[lo, hi], fmt="none", ecolor="black", elinewidth=1, capsize=3)
    ax.set_xticks(range(len(cols)), [c.label for c in cols])
    ax.set_title(sec.title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if rows:
        ax.legend(fontsize=7, loc="best")


def _points(row, cols) -> tuple[list[int], list[float], list[float], list[float]]:
    """(column positions, values, lower and upper error-bar lengths) of a row's scored cells."""
    xs: list[int] = []
    ys: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    for j, col in enumerate(cols):
        c = row.cells.get(col.key)
        if c is None or c.value is None:
            continue
        xs.append(j)
        ys.append(c.value)
        lo.append(c.value - c.ci[0] if c.ci else 0.0)
        hi.append(c.ci[1] - c.value if c.ci else 0.0)
    return xs, ys, lo, hi


def _buckets(ax, sec: Section) -> None:
    cols = [c for c in sec.columns if c.key != "e_all"]
    for row in sec.rows:
        if row.source != "measured":
            continue
        xs, ys, lo, hi = _points(row, cols)
        ax.errorbar(xs, ys, yerr=[lo, hi] if any(lo) or any(hi) else None, marker="o", capsize=3, label=row.label)
    ax.set_xticks(range(len(cols)), [c.label for c in cols])
    ax.set_xlabel("document length (LongBench-E bucket)")
    ax.set_ylabel("score")
    ax.set_title(sec.title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def _by_length(ax, sec: Section, row, level: float) -> None:
    """One model: every task's score by length (thin), the family's score per length (bold, with its interval)."""
    cols = [c for c in sec.columns if not c.key.endswith("_avg")]
    labels = [c.label for c in cols]
    lengths = [c.key.removeprefix(f"{sec.family}_") for c in cols]
    order = stock.STOCK_BY_KEY[sec.family or ""].tasks
    for task, points in sorted((row.series or {}).items(), key=lambda kv: order.index(kv[0])):
        xs = [lengths.index(ln) for ln in points if ln in lengths]
        ax.plot(xs, [points[lengths[x]] for x in xs], lw=0.8, alpha=0.55, marker=".", label=task,
                color=f"C{order.index(task) % 10}", linestyle="-" if order.index(task) < 10 else "--")
    xs, ys, lo, hi = _points(row, cols)
    if xs:
        ax.errorbar(xs, ys, yerr=[lo, hi] if any(lo) or any(hi) else None, color="black", lw=2, marker="o",
                    capsize=3, label=f"{stock.STOCK_BY_KEY[sec.family or ''].title.split(' (')[0]} ({level:.0%} CI)")
    ax.set_xticks(range(len(cols)), labels)
    ax.set_xlabel("max_seq_lengths")
    ax.set_ylabel("score (0-1)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(row.label, fontsize=9)
    ax.grid(alpha=0.3)
