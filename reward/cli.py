"""`lr-eval score` and `lr-eval agreement`: LongReward from the command line.

score: INPUT.jsonl lines {"id", "context", "question", "responses": [...]} →
OUTPUT.jsonl lines {"id", "results": [one LongReward verdict per response]}.
Each finished prompt is appended to the output at once (and synced), so an
interrupted run keeps its work; a rerun skips the ids already in the output
and the judge cache makes repeated calls free. At the end the output is
rewritten in input order, with one {"id", "line", "error"} record per bad
input line. --dry-run estimates calls, tokens and cost and sends nothing.

agreement: PAIRS.jsonl lines with a context, a question, two responses and
the human's choice → pairwise accuracy of the reward, of each dimension and
of each leave-one-out combination, with bootstrap confidence intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from lr_eval.config import JudgeConfig, add_judge_args
from lr_eval.jsonl import InputError, read_done_ids, read_unique, require, write_jsonl_atomic
from lr_eval.progress import console as err_console
from lr_eval.report import print_usage
from lr_eval.types import BudgetExceeded, JudgeFatalError

from . import agreement as agr
from .records import DIMENSIONS, ResponseScore
from .scorer import LongRewardScorer, RewardConfig
from .settings import RewardSettings, add_reward_args, build_scorer

# Results go to stdout; wide enough for the tables when piped to a file.
out_console = Console(width=None if sys.stdout.isatty() else 130)


# ---------------------------------------------------------------------------------------------------------
# options: the flags are RewardSettings' fields (lr_eval.reward.settings)
# ---------------------------------------------------------------------------------------------------------

def reward_config(args: argparse.Namespace, judge: JudgeConfig) -> RewardConfig:
    """The scorer's settings from the flags, for this judge."""
    return RewardSettings.from_args(args).config(judge)


# ---------------------------------------------------------------------------------------------------------
# score
# ---------------------------------------------------------------------------------------------------------

def read_items(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(valid items with their line number, error records for bad lines); a bad line never stops the others."""

    def parse(rec: dict[str, Any], n: int) -> tuple[str, dict[str, Any]]:
        rid = str(require(rec, "id", (str, int), path, n))
        context = require(rec, "context", str, path, n)
        question = require(rec, "question", str, path, n)
        responses = require(rec, "responses", list, path, n)
        if not responses:
            raise InputError(path, n, "responses", "empty list")
        for i, r in enumerate(responses):
            if not isinstance(r, str):
                raise InputError(path, n, f"responses[{i}]", f"expected str, got {type(r).__name__}")
        return rid, {"id": rid, "line": n, "context": context, "question": question, "responses": responses}

    return read_unique(path, parse, lambda rec: rec.get("id"))


def result_record(item: dict[str, Any], scores: list[ResponseScore], audit: bool) -> dict[str, Any]:
    results = []
    for s in scores:
        d = s.to_dict()
        if not audit:
            d.pop("audit")
        results.append(d)
    return {"id": item["id"], "results": results}


def run_score(args: argparse.Namespace) -> int:
    """`lr-eval score`: the flags over :func:`score_file`."""
    return score_file(RewardSettings.from_args(args), JudgeConfig.from_args(args), args.input, args.output,
                      audit=not args.no_audit)


def score_file(settings: RewardSettings, judge: JudgeConfig, input_path: str | Path, output: str | Path,
               audit: bool = True) -> int:
    """Score every item of `input_path` into `output` (resumable); returns the number of items not scored
    (bad lines, or stopped by a fatal error or the budget). `audit` False leaves the audit trail out."""
    items, errors = read_items(input_path)
    for e in errors:
        err_console.print(f"[red]{e['error']}")
    out = Path(output)
    done = {} if judge.dry_run else read_done_ids(out)
    todo = [it for it in items if it["id"] not in done]
    if done:
        err_console.print(f"resuming: {len(items) - len(todo)} of {len(items)} items already in {out}")
    scorer = build_scorer(settings, judge)
    new, stop = score_appending(scorer, todo, lambda it, scores: result_record(it, scores, audit),
                                None if judge.dry_run else out,
                                [done[it["id"]] for it in items if it["id"] in done], settings.groups_in_flight)
    if judge.dry_run:
        print_estimate(scorer, todo)
        return 0
    rows: list[tuple[int, dict[str, Any]]] = []
    for it in items:
        rec = done.get(it["id"]) or new.get(it["id"]) or {"id": it["id"], "line": it["line"],
                                                          "error": f"not scored: {stop}"}
        rows.append((it["line"], rec))
    rows += [(e["line"], e) for e in errors]
    rows.sort(key=lambda x: x[0])
    final = [r for _, r in rows]
    write_jsonl_atomic(out, final)
    print_summary(final, scorer)
    print_usage(scorer.client.meter)
    failed = sum("error" in r for r in final)
    if stop is not None:  # one line from the command's error handler; finished items are already written
        raise stop
    if failed:
        err_console.print(f"[red]{failed} of {len(final)} lines not scored (see 'error' in {out})")
    return failed


def score_appending(scorer: LongRewardScorer, todo: list[dict[str, Any]],
                    record: Callable[[dict[str, Any], list[ResponseScore]], dict[str, Any]], out: Path | None,
                    kept: list[dict[str, Any]], in_flight: int) -> tuple[dict[str, dict[str, Any]], Exception | None]:
    """Score the `todo` items ({id, context, question, responses}), writing as they finish.

    `out` (None: a dry run, nothing written) starts from the `kept` records only (a line cut by a crash
    goes); each finished item's ``record(item, scores)`` is then appended and synced at once. Returns the
    new records by id and the error that stopped the run (a fatal judge error or the budget), or None.
    """
    new: dict[str, dict[str, Any]] = {}
    fh = None
    if out is not None:
        write_jsonl_atomic(out, kept)
        fh = open(out, "a", encoding="utf-8")  # noqa: SIM115 - closed below

    def on_done(i: int, scores: list[ResponseScore]) -> None:
        rec = record(todo[i], scores)
        new[todo[i]["id"]] = rec
        if fh is not None:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    stop: Exception | None = None
    try:
        scorer.score_groups([(it["context"], it["question"], it["responses"]) for it in todo], in_flight,
                            on_done, "LongReward")
    except (JudgeFatalError, BudgetExceeded) as e:
        stop = e
    finally:
        if fh is not None:
            fh.close()
    return new, stop


def print_estimate(scorer: LongRewardScorer, todo: list[dict[str, Any]]) -> None:
    m = scorer.client.meter
    responses = sum(len(it["responses"]) for it in todo)
    ctx_tokens = sum(scorer.count_tokens(it["context"]) for it in todo)
    t = Table(title="dry run: estimate (nothing sent)", show_header=False)
    t.add_row("prompts / responses", f"{len(todo):,} / {responses:,}")
    t.add_row("judge calls", f"{m.est_calls:,} (statements estimated as one per sentence; re-asks not included)")
    t.add_row("judge input tokens", f"{m.est_input_tokens:,}")
    t.add_row("judge output tokens (at most)", f"{m.est_output_tokens:,}")
    cost = m.estimated_cost()
    t.add_row("judge cost (at most)", "unknown (no price)" if cost is None else f"${cost:,.4f}")
    t.add_row("embedding tokens (contexts, once each)", f"{ctx_tokens:,} + the statements")
    out_console.print(t)


def _quantiles(values: list[float]) -> str:
    if not values:
        return "-"
    q = np.quantile(values, [0.1, 0.5, 0.9])
    return " / ".join(f"{x:.1f}" for x in q)


def _histogram(values: list[float]) -> str:
    bins = [0, 2, 4, 6, 8, 10.0001]
    counts = np.histogram(values, bins=bins)[0] if values else [0] * 5
    return " ".join(str(int(c)) for c in counts)


def print_summary(records: list[dict[str, Any]], scorer: LongRewardScorer | None = None) -> None:
    """Per dimension: mean, spread, distribution and unscored counts; then the flags."""
    results = [r for rec in records for r in rec.get("results", [])]
    t = Table(title=f"LongReward: {len(results)} responses in {sum('results' in r for r in records)} prompts")
    for col in ("", "scored", "mean", "std", "p10 / p50 / p90", "0-2 2-4 4-6 6-8 8-10", "unscored (top reason)"):
        t.add_column(col, justify="left" if col in ("", "unscored (top reason)") else "right")
    for dim in (*DIMENSIONS, "reward"):
        vals = [float(r[dim]) for r in results if r.get(dim) is not None]
        if dim == "reward":
            reasons = Counter("no dimension scored" for r in results if r.get("reward") is None)
        else:
            reasons = Counter(r.get("unscored", {}).get(dim) for r in results if dim in r.get("unscored", {}))
        top = reasons.most_common(1)
        un = sum(reasons.values())
        t.add_row(dim, str(len(vals)), f"{np.mean(vals):.2f}" if vals else "-", f"{np.std(vals):.2f}" if vals else "-",
                  _quantiles(vals), _histogram(vals),
                  f"{un}" + (f" ({_short(top[0][0])})" if top else ""))
    out_console.print(t)
    flags = Counter(f for r in results for f in r.get("flags", []))
    errors = sum("error" in r for r in records)
    if flags or errors:
        f = Table(title="flags", show_header=False)
        for name, n in flags.most_common():
            f.add_row(name, str(n))
        if errors:
            f.add_row("input lines not scored", str(errors))
        out_console.print(f)
    if scorer is not None and scorer.embedded_tokens:
        out_console.print(f"embedding tokens this run: {scorer.embedded_tokens:,}")


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


# ---------------------------------------------------------------------------------------------------------
# agreement
# ---------------------------------------------------------------------------------------------------------

def run_agreement(args: argparse.Namespace) -> int:
    judge = JudgeConfig.from_args(args)
    settings = RewardSettings.from_args(args)
    cfg = settings.config(judge)
    pairs, errors, ties = agr.read_pairs(args.pairs)
    for e in errors:
        err_console.print(f"[red]{e}")
    if not pairs:
        raise ValueError(f"{args.pairs}: no usable pair ({len(errors)} bad lines, {ties} human ties)")
    scorer = build_scorer(settings, judge)
    scored = scorer.score_groups([(p.context, p.question, list(p.responses)) for p in pairs],
                                 settings.groups_in_flight, None, "agreement")
    if judge.dry_run:
        print_estimate(scorer, [{"context": p.context, "responses": p.responses} for p in pairs])
        return 0
    weights = dict(zip(DIMENSIONS, cfg.weights, strict=True))
    rows = agr.agreement_table([(a, b) for a, b in scored], [p.human for p in pairs], weights,
                               n_boot=args.bootstrap, seed=args.seed)
    t = Table(title=f"judge-human agreement: {len(pairs)} pairs ({ties} human ties and {len(errors)} bad lines "
                    "left out)")
    for col in ("combination", "pairs", "accuracy", "95% CI", "paper (464 pairs)"):
        t.add_column(col, justify="left" if col == "combination" else "right")
    for r in rows:
        t.add_row(r.name, f"{r.n}" + (f" (-{r.excluded})" if r.excluded else ""),
                  "-" if r.accuracy is None else f"{r.accuracy:.3f}",
                  "-" if r.accuracy is None else f"{r.ci[0]:.3f}-{r.ci[1]:.3f}",
                  "" if r.paper is None else f"{r.paper:.3f}")
    out_console.print(t)
    out_console.print("a tie in the scores counts as half right; (-n): pairs without a value for that combination")
    if args.output:
        recs = [{"id": p.id, "human": p.human, "results": [a.to_dict(), b.to_dict()]}
                for p, (a, b) in zip(pairs, scored, strict=True)]
        recs.append({"id": "__summary__", "rows": [r.to_dict() for r in rows]})
        write_jsonl_atomic(args.output, recs)
    print_usage(scorer.client.meter)
    return 0


# ---------------------------------------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------------------------------------

def register(sub: argparse._SubParsersAction) -> None:
    """Add `score` and `agreement` to `lr-eval` (entry point group lr_eval.commands)."""
    p = sub.add_parser("score", help="LongReward scores for responses to long-context questions (resumable)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help='JSONL: {"id", "context", "question", "responses": [...]}')
    p.add_argument("-o", "--output", required=True, help='JSONL: {"id", "results": [...]} or {"id", "line", "error"}')
    p.add_argument("--no-audit", action="store_true", help="leave the audit trail out of the output")
    add_reward_args(p)
    add_judge_args(p)
    p.set_defaults(func=lambda a: 1 if run_score(a) else 0)

    q = sub.add_parser("agreement", help="pairwise judge-human agreement of LongReward and its ablations",
                       description=agr.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("pairs", help='JSONL: {"context", "question", "responses": [a, b], "human": 0|1|"a"|"b"|"tie"} '
                                 '(or response_a/response_b, or chosen/rejected)')
    q.add_argument("-o", "--output", help="JSONL with every pair's scores and the summary rows")
    q.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (default %(default)s)")
    q.add_argument("--seed", type=int, default=0)
    add_reward_args(q)
    add_judge_args(q)
    q.set_defaults(func=run_agreement)
