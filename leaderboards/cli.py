"""`lr-leaderboard`: leaderboard tables, plots and paired comparisons from lm-eval output folders.

  lr-leaderboard build RESULTS_DIR... -o OUT/     Markdown, CSV, JSON, self-contained HTML, PNG/SVG plots
  lr-leaderboard compare A B                      paired difference, CI and p-value per benchmark

A RESULTS_DIR is lm-eval's --output_path (or a folder below it, or one results_*.json);
write LABEL=PATH to name a run. Run lm-eval with --log_samples to get intervals and paired tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lr_eval.errors import UserError
from lr_eval.jsonl import check_dir_writable, check_paths, write_text_atomic

from .stats import DEFAULT_ITERS, DEFAULT_SEED


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lr-leaderboard", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write leaderboard tables and plots from lm-eval results")
    b.add_argument("results", nargs="+", metavar="RESULTS_DIR", help="lm-eval output folder(s) or results files; "
                   "LABEL=PATH names the run")
    b.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    b.add_argument("--title", default="LongReward leaderboard")
    b.add_argument("--note", action="append", default=[], help="a paragraph under the title (repeatable), "
                   "e.g. how the runs were made")
    b.add_argument("--no-published", action="store_true", help="leave out the paper's published rows")
    b.add_argument("--no-plots", action="store_true", help="skip the PNG/SVG plots (no matplotlib needed)")
    b.add_argument("--formats", default="png,svg", help="plot formats (default png,svg)")
    _stats_args(b, DEFAULT_ITERS)
    b.set_defaults(func=_build)
    c = sub.add_parser("compare", help="paired test of run B against run A on the items both scored")
    c.add_argument("a", metavar="A", help="baseline run (folder or results file; LABEL=PATH)")
    c.add_argument("b", metavar="B", help="run compared with A")
    c.add_argument("--per-task", action="store_true", help="also test every shared task on its own")
    c.add_argument("--pair-on", choices=("auto", "doc_hash", "doc_id"), default="auto",
                   help="item identity: auto = doc_hash+doc_id when both runs logged doc_hash, else doc_id")
    c.add_argument("--alpha", type=float, default=0.05, help="significance level for the multiple-comparison note")
    c.add_argument("--json", type=Path, help="also write the comparisons as JSON to this file")
    _stats_args(c, 10_000)
    c.set_defaults(func=_compare)
    return p


def _stats_args(p: argparse.ArgumentParser, iters: int) -> None:
    p.add_argument("--iters", type=int, default=iters, help=f"bootstrap/permutation resamples (default {iters})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default 0)")
    p.add_argument("--ci-level", type=float, default=0.95, help="confidence level (default 0.95)")


def _build(a: argparse.Namespace) -> int:
    from .board import build_board
    from .html import to_html
    from .reader import input_files, load_runs
    from .render import dumps, to_csv, to_json, to_markdown

    runs = load_runs(a.results)  # inputs first: a bad one leaves no empty output folder behind
    check_dir_writable(a.out)
    names = ["leaderboard.md", "leaderboard.csv", "leaderboard.json", "leaderboard.html"]
    check_paths({f"output {n}": a.out / n for n in names}, input_files(runs))
    board = build_board(runs, with_published=not a.no_published, iters=a.iters, seed=a.seed, level=a.ci_level)
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    svgs: dict[str, str] = {}
    written: list[Path] = []
    if not a.no_plots:
        from .plots import make_plots

        try:
            figs = make_plots(board, out / "plots", tuple(f.strip() for f in a.formats.split(",") if f.strip()))
        except ImportError as e:
            print(f"lr-leaderboard: plots skipped ({e}); pip install matplotlib", file=sys.stderr)
            figs = {}
        for name, path in figs.items():
            written += sorted(path.parent.glob(f"{path.stem}.*"))
            if path.suffix == ".svg":
                svgs[{"benchmarks": "Scores per benchmark (95% CI)",
                      "length_buckets": "Score by context length"}.get(name, name)] = path.read_text(encoding="utf-8")
    files = {"leaderboard.md": to_markdown(board, a.title, a.note), "leaderboard.csv": to_csv(board),
             "leaderboard.json": dumps(to_json(board)), "leaderboard.html": to_html(board, a.title, a.note, svgs)}
    for name, text in files.items():
        write_text_atomic(out / name, text)
        written.append(out / name)
    for run in runs:
        j = board.judges[run.label]
        if j.self_judged:
            print(f"warning: {run.label}: the judge ({', '.join(j.models)}) is the evaluated model; "
                  f"its scores include self-preference", file=sys.stderr)
        no_samples = sorted(t for t, tr in run.tasks.items() if tr.samples is None)
        if no_samples:
            more = " ..." if len(no_samples) > 5 else ""
            print(f"note: {run.label}: no samples for {len(no_samples)} task(s) (no bootstrap CI there; "
                  f"run lm-eval with --log_samples): {', '.join(no_samples[:5])}{more}", file=sys.stderr)
    print(f"{len(runs)} run(s): " + ", ".join(r.label for r in runs))
    for p in sorted(set(written)):
        print(f"wrote {p}")
    return 0


def _compare(a: argparse.Namespace) -> int:
    from .compare import compare_runs, format_comparisons
    from .reader import disambiguate, input_files, load_runs

    ra, rb = load_runs([a.a]), load_runs([a.b])
    if a.json:
        check_paths({"--json file": a.json}, input_files(ra + rb))
    for arg, runs in ((a.a, ra), (a.b, rb)):
        if len(runs) != 1:
            print(f"lr-leaderboard compare: {arg} holds {len(runs)} runs ({', '.join(r.label for r in runs)}); "
                  f"give one run folder or results file", file=sys.stderr)
            return 2
    run_a, run_b = ra[0], rb[0]
    disambiguate([run_a, run_b])
    if run_a.label == run_b.label:  # the same folder twice
        run_a.label, run_b.label = f"{run_a.label} (A)", f"{run_b.label} (B)"
    comps = compare_runs(run_a, run_b, iters=a.iters, seed=a.seed, per_task=a.per_task, level=a.ci_level,
                         pair_on=a.pair_on)
    if not comps:
        print("lr-leaderboard compare: the two runs share no benchmark", file=sys.stderr)
        return 1
    print(format_comparisons(run_a, run_b, comps, a.iters, a.seed, a.alpha, a.ci_level))
    if a.json:
        write_text_atomic(a.json, json.dumps({"a": run_a.label, "b": run_b.label, "iters": a.iters, "seed": a.seed,
                                      "comparisons": [c.as_dict() for c in comps]}, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        return int(a.func(a))
    except UserError as e:
        print(f"lr-leaderboard {a.cmd}: error: {e}", file=sys.stderr)
        return e.exit_code
    except (FileNotFoundError, ValueError) as e:
        print(f"lr-leaderboard {a.cmd}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `lr-leaderboard compare A B | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
