"""`lr-eval score` and `lr-eval agreement`: LongReward from the command line.

score: INPUT.jsonl lines {"id", "context", "question", "responses": [...]} →
OUTPUT.jsonl lines {"id", "results": [one LongReward verdict per response], "input_key"}
(the engine: lr_eval.reward.engine). Each finished prompt is appended to the output at once (and synced), so an
interrupted run keeps its work; a rerun reuses a prompt whose input_key (a hash
of its record and of the options that change its result) is in the output, and
the judge cache makes repeated calls free. At the end the output is
rewritten in input order, with one {"id", "line", "error"} record per bad
input line. --dry-run estimates calls, tokens and cost and sends nothing.

agreement: PAIRS.jsonl lines with a context, a question, two responses and
the human's choice → pairwise accuracy of the reward, of each dimension and
of each leave-one-out combination, with bootstrap confidence intervals.
"""

from __future__ import annotations

import argparse

from rich.table import Table

from lr_eval.config import JudgeConfig, add_judge_args
from lr_eval.jsonl import InputError, write_jsonl_atomic
from lr_eval.progress import console as err_console
from lr_eval.report import print_usage

from . import agreement as agr
from .engine import build_scorer, check_score_paths, out_console, print_estimate, score_file
from .records import DIMENSIONS
from .settings import RewardConfig, add_reward_args

# ---------------------------------------------------------------------------------------------------------
# options: the flags are RewardConfig's option fields (lr_eval.reward.settings)
# ---------------------------------------------------------------------------------------------------------

def reward_config(args: argparse.Namespace, judge: JudgeConfig) -> RewardConfig:
    """The scorer's settings from the flags, for this judge."""
    return RewardConfig.from_args(args).for_judge(judge)


# ---------------------------------------------------------------------------------------------------------
# score: the flags over the engine (lr_eval.reward.engine)
# ---------------------------------------------------------------------------------------------------------

def run_score(args: argparse.Namespace) -> int:
    """`lr-eval score`: the flags over :func:`~lr_eval.reward.engine.score_file`."""
    return score_file(RewardConfig.from_args(args), JudgeConfig.from_args(args), args.input, args.output,
                      audit=not args.no_audit)


# ---------------------------------------------------------------------------------------------------------
# agreement
# ---------------------------------------------------------------------------------------------------------

def run_agreement(args: argparse.Namespace) -> int:
    judge = JudgeConfig.from_args(args)
    settings = RewardConfig.from_args(args)
    cfg = settings.for_judge(judge)
    check_score_paths(args.pairs, args.output, judge, settings.embed_cache)
    pairs, errors, ties = agr.read_pairs(args.pairs)
    for e in errors:
        err_console.print(str(e), style="red", markup=False, highlight=False)
    if not pairs:
        raise InputError(args.pairs, None, None, f"no usable pair ({len(errors)} bad lines, {ties} human ties)")
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
    if errors:
        err_console.print(f"[red]{len(errors)} bad lines left out (see above)")
    return 1 if errors else 0


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
