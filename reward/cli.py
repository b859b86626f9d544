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

from lr_eval.config import JudgeConfig, add_judge_args, build_client
from lr_eval.jsonl import InputError, read_done_ids, read_unique, require, write_jsonl_atomic
from lr_eval.progress import console as err_console
from lr_eval.report import print_usage
from lr_eval.types import BudgetExceeded, JudgeFatalError

from . import agreement as agr
from .scorer import DIMENSIONS, LongRewardScorer, ResponseScore, RewardConfig

# Results go to stdout; wide enough for the tables when piped to a file.
out_console = Console(width=None if sys.stdout.isatty() else 130)
EMBEDDED_WINDOW = 8192  # SmolLM2-135M-Instruct's context


# ---------------------------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------------------------

def add_reward_args(parser: argparse.ArgumentParser) -> None:
    """The method options (defaults: the paper's settings)."""
    d = RewardConfig()
    g = parser.add_argument_group("LongReward method")
    g.add_argument("--embedder", default=d.embedder, metavar="SPEC",
                   help="retrieval embedder: local (all-MiniLM-L6-v2, offline), local:PATH, openai:MODEL or bm25 "
                        "(default %(default)s)")
    g.add_argument("--embed-base-url", metavar="URL", help="endpoint for openai:MODEL embeddings")
    g.add_argument("--embed-api-key-env", default="LR_EMBED_API_KEY", metavar="VAR",
                   help="environment variable with the embedding API key (default %(default)s, then OPENAI_API_KEY)")
    g.add_argument("--embed-cache", metavar="PATH",
                   help="SQLite cache of embeddings, or 'none' (default: beside the judge cache)")
    g.add_argument("--language", choices=("auto", "en", "zh"), default=d.language,
                   help="prompt language; auto picks it from the question and context")
    g.add_argument("--k", type=int, default=d.k, metavar="N", help="passages per statement (default %(default)s)")
    g.add_argument("--retrieval-chunk-tokens", type=int, default=d.retrieval_chunk_tokens, metavar="N")
    g.add_argument("--extraction-chunk-tokens", type=int, default=d.extraction_chunk_tokens, metavar="N")
    g.add_argument("--weights", default="1,1,1,1", metavar="H,L,F,C",
                   help="dimension weights: helpfulness, logicality, faithfulness, completeness (0 skips one)")
    g.add_argument("--tokenizer", metavar="NAME", help="chunking tokenizer (default: the embedded model's)")
    g.add_argument("--reasks", type=int, default=d.reasks, metavar="N", help="re-asks of an unparseable answer")
    g.add_argument("--judge-window", type=int, metavar="TOKENS",
                   help=f"judge context window; longer prompts are unscored, not sent (default {d.judge_window}, "
                        f"{EMBEDDED_WINDOW} for the embedded judge; 0 = do not check)")
    g.add_argument("--max-context-tokens", type=int, default=d.max_context_tokens, metavar="N",
                   help="longer contexts lose their middle (flag context_truncated; 0 = no limit)")
    g.add_argument("--max-statements", type=int, metavar="N", help="judge at most N statements per response")
    g.add_argument("--support-batch", type=int, default=d.support_batch, metavar="N",
                   help="statements judged per support call, their passages shown once (default %(default)s; "
                        "1 = one call per statement, as the paper)")
    g.add_argument("--judge-max-tokens", type=int, metavar="N", help="output budget of every judge call")
    g.add_argument("--groups-in-flight", type=int, default=16, metavar="N",
                   help="prompts prepared and judged at the same time (default %(default)s)")


def reward_config(args: argparse.Namespace, judge: JudgeConfig) -> RewardConfig:
    try:
        weights = tuple(float(x) for x in str(args.weights).split(","))
    except ValueError:
        raise ValueError(f"--weights: expected four numbers like 1,1,1,1, got {args.weights!r}") from None
    if len(weights) != 4:
        raise ValueError(f"--weights: expected four numbers like 1,1,1,1, got {args.weights!r}")
    batch = getattr(args, "support_batch", None)
    batch = RewardConfig().support_batch if batch is None else batch
    window = args.judge_window
    if window is None:
        window = EMBEDDED_WINDOW if judge.backend == "embedded" else RewardConfig().judge_window
    cfg = RewardConfig(retrieval_chunk_tokens=args.retrieval_chunk_tokens,
                       extraction_chunk_tokens=args.extraction_chunk_tokens, k=args.k, weights=weights,  # type: ignore[arg-type]
                       language=args.language, reasks=args.reasks, tokenizer=args.tokenizer, embedder=args.embedder,
                       judge_window=window or None, max_context_tokens=args.max_context_tokens or None,
                       max_statements=args.max_statements, support_batch=batch)
    if args.judge_max_tokens:
        cfg.max_tokens = {k: args.judge_max_tokens for k in cfg.max_tokens}
    return cfg


def build_scorer(args: argparse.Namespace, judge: JudgeConfig, cfg: RewardConfig) -> LongRewardScorer:
    from lr_eval.embed import build_embedder

    client = build_client(judge)
    cache: Any = None
    if args.embed_cache and args.embed_cache.lower() != "none":
        cache = Path(args.embed_cache).expanduser()
    elif args.embed_cache is None and judge.cache_path() is not None:
        cache = judge.cache_path().parent / "embed-cache.sqlite"  # type: ignore[union-attr]
    embedder = build_embedder(cfg.embedder, base_url=args.embed_base_url, api_key_env=args.embed_api_key_env,
                              cache=cache)
    return LongRewardScorer(client, cfg, embedder=embedder)


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
    """Returns the number of items not scored (bad lines, or stopped by a fatal error or the budget)."""
    judge = JudgeConfig.from_args(args)
    cfg = reward_config(args, judge)
    items, errors = read_items(args.input)
    for e in errors:
        err_console.print(f"[red]{e['error']}")
    out = Path(args.output)
    done = {} if judge.dry_run else read_done_ids(out)
    todo = [it for it in items if it["id"] not in done]
    if done:
        err_console.print(f"resuming: {len(items) - len(todo)} of {len(items)} items already in {out}")
    scorer = build_scorer(args, judge, cfg)
    new, stop = score_appending(scorer, todo, lambda it, scores: result_record(it, scores, not args.no_audit),
                                None if judge.dry_run else out,
                                [done[it["id"]] for it in items if it["id"] in done], args.groups_in_flight)
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
    cfg = reward_config(args, judge)
    pairs, errors, ties = agr.read_pairs(args.pairs)
    for e in errors:
        err_console.print(f"[red]{e}")
    if not pairs:
        raise ValueError(f"{args.pairs}: no usable pair ({len(errors)} bad lines, {ties} human ties)")
    scorer = build_scorer(args, judge, cfg)
    scored = scorer.score_groups([(p.context, p.question, list(p.responses)) for p in pairs],
                                 args.groups_in_flight, None, "agreement")
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
