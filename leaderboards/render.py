"""Text outputs of a board: Markdown (to paste in a README), tidy CSV, and JSON (everything, machine-readable)."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from .board import Board, Cell, Column, JudgeInfo, Row, Section, is_partial

DAGGER = "†"
WARN = "⚠"
#: marks a row whose judged tasks left more than 2% of their items unscored (judge-caused)
UNSCORED = "‡"
UNSCORED_LEGEND = (f"{UNSCORED}: more than 2% of this row's judged items were left unscored by the judge (left out "
                   "of the mean; the cell's details give the pessimistic bound, unscored counted as the scale's "
                   "minimum).")


def fmt_value(v: float | None, decimals: int = 1) -> str:
    return "" if v is None else f"{v:.{decimals}f}"


def fmt_cell(cell: Cell | None, col: Column, with_ci: bool = True) -> str:
    """``61.2 (55.0–67.1)``; a dagger when only part of the column's datasets were run."""
    if cell is None or cell.value is None:
        return f"— ({cell.unscored} unscored)" if cell is not None and cell.unscored else "—"
    s = fmt_value(cell.value, col.decimals)
    if with_ci and cell.ci:
        s += f" ({cell.ci[0]:.{col.decimals}f}–{cell.ci[1]:.{col.decimals}f})"
    if _partial(cell):
        s += f" {DAGGER}"
    return s


def _partial(cell: Cell) -> bool:
    return is_partial(cell.coverage)


def fmt_cost(v: float | None) -> str:
    return "—" if v is None else f"${v:.4f}"


def fmt_rate(j: JudgeInfo | None) -> str:
    if j is None or j.unscored_rate is None:
        return "—"
    return f"{100 * j.unscored_rate:.1f}% ({j.unscored}/{j.judged_items})"


def row_label(row: Row) -> str:
    return row.label + (f" {WARN}" if row.judge and row.judge.self_judged else "") \
        + (f" {UNSCORED}" if row.unscored_mark else "")


def any_mark(board: Board) -> bool:
    return any(r.unscored_mark for s in board.sections for r in s.rows)


def fmt_tampered(j: JudgeInfo) -> str:
    """Tampered items and whose fault the unscored and tampered ones were (the judge's, the evaluated text's)."""
    if j.tampered is None:
        return "—"
    causes: dict[str, int] = {}
    for entry in j.per_task.values():
        for k, v in (entry.get("causes") or {}).items():
            if isinstance(v, int):
                causes[k] = causes.get(k, 0) + v
    why = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(causes.items()))
    return f"{j.tampered}" + (f" (causes: {why})" if why else "")


def methods_text(board: Board) -> str:
    return (f"Intervals: {int(board.level * 100)}% percentile bootstrap over items ({board.iters} resamples, "
            f"seed {board.seed}); a category or average resamples each dataset's items independently and "
            f"averages the replicates like the scores. \"normal\" intervals (value ± z·stderr from lm-eval) are "
            f"used only when no samples were logged. No interval where the reported score is not a mean of "
            f"per-item values (e.g. AlpacaEval LC win rate) or for published rows.")


def to_markdown(board: Board, title: str = "Leaderboard", notes: list[str] | None = None) -> str:
    """README-ready Markdown: one table per section, a judge table, the runs and the method notes."""
    out = [f"# {title}", ""]
    for n in notes or []:
        out += [n, ""]
    for sec in board.sections:
        out += _md_section(sec)
    measured = list(board.runs)
    if measured:
        tampered = any(board.judges[r.label].tampered is not None for r in measured)
        thead, tsep = (" Tampered |", "--:|") if tampered else ("", "")
        out += ["## Judge", "", "| Model | Judge model | Templates | Unscored |" + thead + " Judge cost | Note |",
                "|---|---|---|--:|" + tsep + "--:|---|"]
        for run in measured:
            j = board.judges[run.label]
            tmpl = ", ".join(f"{k}@{v}" if v else k for k, v in sorted(j.templates.items())) or "—"
            warn = f"{WARN} judge is the evaluated model" if j.self_judged else ""
            tcell = f" {_esc(fmt_tampered(j))} |" if tampered else ""
            out.append(f"| {_esc(run.label)} | {_esc(', '.join(j.models) or '—')} | {_esc(tmpl)} | {fmt_rate(j)} |"
                       f"{tcell} {fmt_cost(j.cost_usd)} | {warn} |")
        out += ["", "## Runs", "", "| Model | lm-eval model | model_args | limit | chat template | lm-eval | results |",
                "|---|---|---|--:|---|---|---|"]
        for run in measured:
            ma = ", ".join(f"{k}={v}" for k, v in run.model_args.items())
            chat = "yes" if run.info.get("chat_template_sha") else "no"
            out.append(f"| {_esc(run.label)} | {_esc(str(run.config.get('model', '')))} | {_esc(ma)} | "
                       f"{run.limit if run.limit is not None else '—'} | {chat} | "
                       f"{run.info.get('lm_eval_version', '')} | {_esc(', '.join(run.results_files))} |")
        out.append("")
    out += [methods_text(board), "",
            f"{DAGGER}: only some of the column's datasets were run (see the coverage in the CSV). "
            f"{WARN}: the judge is the evaluated model; its scores include self-preference."
            + (f" {UNSCORED_LEGEND}" if any_mark(board) else ""), ""]
    return "\n".join(out)


def _md_section(sec: Section) -> list[str]:
    cols = sec.columns
    judged = any(r.section_judge for r in sec.rows)
    jhead, jsep = (" Judge | Unscored |", "---|--:|") if judged else ("", "")
    out = [f"## {sec.title}", "", sec.description, "",
           "| Model | Source | " + " | ".join(c.label for c in cols) + " |" + jhead,
           "|---|---|" + "|".join("--:" for _ in cols) + "|" + jsep]
    for row in sec.rows:
        cells = [_esc(fmt_cell(row.cells.get(c.key), c)) for c in cols]
        if judged:
            cells += list(_md_judge(row))
        out.append(f"| {_esc(row_label(row))} | {row.source} | " + " | ".join(cells) + " |")
    out.append("")
    partial = [f"{r.label}: " + ", ".join(f"{c.label} {r.cells[c.key].coverage}" for c in cols
                                          if c.key in r.cells and _partial(r.cells[c.key]))
               for r in sec.rows if any(c.key in r.cells and _partial(r.cells[c.key]) for c in cols)]
    if partial:
        out += [f"{DAGGER} partial: " + "; ".join(partial), ""]
    for n in sec.notes:
        out += [f"- {n}"]
    if sec.notes:
        out.append("")
    return out


def _md_judge(row: Row) -> tuple[str, str]:
    """(judge model(s), unscored rate) of the tasks behind this row of this section; published rows: the paper's."""
    j = row.section_judge
    if j is None:
        return ("—", "—")
    models = ", ".join(j["models"]) or "unknown"
    if j["self_judged"]:
        models += f" {WARN}"
    rate = "—" if j["unscored_rate"] is None else f"{100 * j['unscored_rate']:.1f}%"
    return (_esc(models), rate)


def _esc(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


CSV_FIELDS = ["section", "row", "source", "column", "value", "ci_low", "ci_high", "ci_method", "n", "unscored",
              "coverage", "judge_models", "self_judged", "notes"]


def to_csv(board: Board) -> str:
    """Tidy CSV: one line per (section, row, column); pivot it for a wide view."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for sec in board.sections:
        for row in sec.rows:
            for col in sec.columns:
                c = row.cells.get(col.key)
                if c is None:
                    continue
                w.writerow({"section": sec.key, "row": row.label, "source": row.source, "column": col.label,
                            "value": _num(c.value), "ci_low": _num(c.ci[0] if c.ci else None),
                            "ci_high": _num(c.ci[1] if c.ci else None), "ci_method": c.ci_method or "",
                            "n": c.n or "", "unscored": c.unscored if row.source == "measured" else "",
                            "coverage": c.coverage or "",
                            "judge_models": "; ".join(row.judge.models) if row.judge else "",
                            "self_judged": (row.judge.self_judged if row.judge else ""),
                            "notes": " | ".join(c.notes)})
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None else repr(round(v, 6))


def to_json(board: Board) -> dict[str, Any]:
    """Everything the tables show plus per-run details, for scripts."""
    return {
        "method": {"ci_level": board.level, "bootstrap_iters": board.iters, "seed": board.seed,
                   "text": methods_text(board)},
        "sections": [{
            "key": s.key, "title": s.title, "description": s.description, "notes": s.notes,
            "columns": [{"key": c.key, "label": c.label, "title": c.title} for c in s.columns],
            "rows": [_json_row(r) for r in s.rows],
        } for s in board.sections],
        "runs": [run_details(r, board.judges[r.label]) for r in board.runs],
    }


def _json_row(r: Row) -> dict[str, Any]:
    """A row as JSON; the keys added by the verdict-trust rules (pessimistic, marks, tampered) and the length
    series appear only where the results carry them, so older results give the same JSON as before."""
    cells = {}
    for k, c in r.cells.items():
        d: dict[str, Any] = {"value": c.value, "ci": list(c.ci) if c.ci else None, "ci_method": c.ci_method,
                             "n": c.n, "unscored": c.unscored, "coverage": c.coverage, "notes": c.notes}
        if c.pessimistic is not None:
            d["pessimistic"] = c.pessimistic
        cells[k] = d
    out: dict[str, Any] = {"label": r.label, "source": r.source, "notes": r.notes, "cells": cells}
    if r.unscored_mark:
        out["marks"] = ["unscored_over_2pct"]
    if r.section_judge and "tampered" in r.section_judge:
        out["judge"] = {k: r.section_judge[k] for k in ("items", "unscored", "unscored_rate", "tampered")}
    if r.series is not None:
        out["series"] = r.series
    return out


def run_details(run: Any, j: JudgeInfo) -> dict[str, Any]:
    """What the HTML shows on expanding a model: where it came from, how it was run, its judge, per-task numbers."""
    return {
        "label": run.label, "path": str(run.path), "model_name": run.model_name,
        "model": run.config.get("model"), "model_args": run.model_args, "limit": run.limit,
        "gen_kwargs": run.config.get("gen_kwargs"), "seeds": {k: run.config.get(k) for k in
                                                               ("random_seed", "numpy_seed", "torch_seed",
                                                                "fewshot_seed") if k in run.config},
        "info": run.info, "results_files": run.results_files,
        "judge": {"models": j.models, "templates": j.templates, "unscored": j.unscored,
                  "judged_items": j.judged_items, "unscored_rate": j.unscored_rate, "cost_usd": j.cost_usd,
                  "self_judged": j.self_judged, "sources": j.sources, "per_task": j.per_task,
                  **({"tampered": j.tampered} if j.tampered is not None else {})},
        "sidecars": run.sidecars,
        "tasks": {t: {"metrics": tr.metrics, "stderr": tr.stderr, "n": tr.n, "filter": tr.filter,
                      "version": tr.version, "samples": tr.samples_file} for t, tr in sorted(run.tasks.items())},
        "groups": {g: tr.metrics for g, tr in sorted(run.groups.items())},
    }


def clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf (which lm-eval writes for empty aggregates) become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(clean(obj), indent=1, ensure_ascii=False, default=str, allow_nan=False) + "\n"
