"""`lr-eval score` and `lr-eval agreement`: LongReward from the command line.

score: INPUT.jsonl lines {"id", "context", "question", "responses": [...]} →
OUTPUT.jsonl lines {"id", "results": [one LongReward verdict per response], "input_key"}.
Each finished prompt is appended to the output at once (and synced), so an
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
import dataclasses
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from lr_eval.config import JudgeConfig, add_judge_args
from lr_eval.jsonl import (
    KEY_FIELD,
    InputError,
    ResumableJsonl,
    check_output_path,
    content_key,
    iter_unique,
    read_jsonl,
    require,
    run_window,
    write_jsonl_atomic,
)
from lr_eval.progress import console as err_console
from lr_eval.report import print_usage
from lr_eval.types import JudgeStop

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

def parse_group(rec: dict[str, Any], path: str | Path, n: int) -> tuple[str, dict[str, Any]]:
    """(id, {id, line, context, question, responses}) of one input record, or an InputError naming the field."""
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


def iter_items(path: str | Path, lines: Iterable[tuple[int, dict[str, Any] | InputError]] | None = None
               ) -> Iterator[tuple[int, dict[str, Any] | None, dict[str, Any] | None]]:
    """Stream (line, item, None) or (line, None, error record) over an input file (or its `lines`); a bad line
    never stops the others, a repeated id is a bad line (the first is scored)."""
    return iter_unique(path, lambda rec, n: parse_group(rec, path, n), lambda rec: rec.get("id"), lines)


def group_key(item: dict[str, Any], options: dict[str, Any]) -> str:
    """The resume key of a group: its content (not its line) and the options."""
    return content_key({k: item[k] for k in ("id", "context", "question", "responses")}, options)


def result_record(item: dict[str, Any], scores: list[ResponseScore], audit: bool) -> dict[str, Any]:
    results = []
    for s in scores:
        d = s.to_dict()
        if not audit:
            d.pop("audit")
        results.append(d)
    return {"id": item["id"], "results": results}


def result_options(judge: JudgeConfig, cfg: RewardConfig, audit: bool) -> dict[str, Any]:
    """What changes a prompt's result besides its own record: a change here scores it again on resume."""
    return {"reward": dataclasses.asdict(cfg), "judge": [judge.backend, judge.model, judge.system_prompt],
            "audit": audit}


def check_score_paths(input_path: str | Path, output: str | Path | None, judge: JudgeConfig,
                      embed_cache: str | None) -> None:
    """Output, judge cache and embedding cache writable, the output not the input: before any request."""
    if output is not None and not judge.dry_run:
        check_output_path(output, [input_path])
    cache = judge.cache_path()
    if cache is not None:
        check_output_path(cache, [input_path], what="judge cache")
    if embed_cache and embed_cache.lower() != "none":
        check_output_path(Path(embed_cache).expanduser(), [input_path], what="embedding cache")


def run_score(args: argparse.Namespace) -> int:
    """`lr-eval score`: the flags over :func:`score_file`."""
    return score_file(RewardSettings.from_args(args), JudgeConfig.from_args(args), args.input, args.output,
                      audit=not args.no_audit)


def score_file(settings: RewardSettings, judge: JudgeConfig, input_path: str | Path, output: str | Path,
               audit: bool = True) -> int:
    """Score every item of `input_path` into `output` (streaming, resumable by content); returns the number
    of items not scored (bad lines). A fatal judge error or the budget is raised after the output is
    written. `audit` False leaves the audit trail out."""
    check_score_paths(input_path, output, judge, settings.embed_cache)
    options = result_options(judge, settings.config(judge), audit)
    scorer = build_scorer(settings, judge)
    run = score_groups_file(scorer, lambda: iter_items(input_path), None if judge.dry_run else Path(output),
                            lambda it: group_key(it, options), lambda it, scores: result_record(it, scores, audit),
                            settings.groups_in_flight, keep_errors=True)
    if judge.dry_run:
        return 0
    print_usage(scorer.client.meter)
    if run.stop is not None:  # one line from the command's error handler; finished items are already written
        raise run.stop
    if run.failed:
        err_console.print(f"[red]{run.failed} of {run.items + len(run.errors)} lines not scored "
                          f"(see 'error' in {output})")
    return run.failed


@dataclass
class ScoreRun:
    """What `score_groups_file` did: valid items, bad lines, items reused from the output, newly scored, the stop."""

    items: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    reused: int = 0
    scored: int = 0
    stop: Exception | None = None

    @property
    def failed(self) -> int:
        return len(self.errors) + self.items - self.reused - self.scored


def score_groups_file(scorer: LongRewardScorer, entries: Callable[[], Iterable[tuple[int, Any, dict[str, Any] | None]]],
                      out: Path | None, key: Callable[[dict[str, Any]], str],
                      record: Callable[[dict[str, Any], list[ResponseScore]], dict[str, Any]], in_flight: int,
                      keep_errors: bool, desc: str = "LongReward") -> ScoreRun:
    """Score a file of groups ({id, context, question, responses}), streaming, resumable, in input order.

    `entries()` streams (line, item, error record) and is read three times: to validate (every bad line is
    reported before any request), to score, and to write the output in input order. A group whose
    ``key(item)`` (its content and the options) is in `out` already is reused; each new result is appended
    and synced at once (``input_key`` added); at most `in_flight` groups are in memory. `out` None: a dry
    run (estimate, nothing written). Bad lines become error records of the output when `keep_errors`.
    """
    run = ScoreRun()
    estimate = 0
    for _, it, err in entries():
        if err is not None:
            run.errors.append(err)
            err_console.print(err["error"], style="red", markup=False, highlight=False)
        else:
            run.items += 1
            estimate += 4 * len({r for r in it["responses"] if r.strip()})
    if out is None:
        todo = [it for _, it, err in entries() if err is None]
        _score_stream(scorer, todo, in_flight, lambda it, scores: None, estimate, desc)
        print_estimate(scorer, todo)
        return run
    store = ResumableJsonl(out)

    def fresh() -> Iterator[dict[str, Any]]:
        for _, it, err in entries():
            if err is None:
                if key(it) in store:
                    run.reused += 1
                else:
                    yield it

    def on_done(it: dict[str, Any], scores: list[ResponseScore]) -> None:
        store.append({**record(it, scores), KEY_FIELD: key(it)})
        run.scored += 1

    try:
        _score_stream(scorer, fresh(), in_flight, on_done, estimate, desc)
    except JudgeStop as e:
        run.stop = e
    if run.reused:
        err_console.print(f"resumed: {run.reused} of {run.items} prompts reused from {out}")

    def order() -> Iterator[str | dict[str, Any]]:
        for n, it, err in entries():
            if err is not None:
                if keep_errors:
                    yield err
            elif key(it) in store:
                yield key(it)
            elif keep_errors:
                yield {"id": it["id"], "line": n, "error": f"not scored: {run.stop}"}

    store.finish(order())
    print_summary(r for _, r in read_jsonl(out, allow_empty=True) if not isinstance(r, InputError))
    if scorer.embedded_tokens:
        out_console.print(f"embedding tokens this run: {scorer.embedded_tokens:,}")
    return run


def _score_stream(scorer: LongRewardScorer, items: Iterable[dict[str, Any]], in_flight: int,
                  on_done: Callable[[dict[str, Any], list[ResponseScore]], None], estimate: int, desc: str) -> None:
    async def go() -> None:
        with scorer.client.progress(desc, estimate):
            await run_window(items, lambda i, it: scorer.score_group(it["context"], it["question"], it["responses"]),
                             in_flight, lambda i, it, scores: on_done(it, scores))

    scorer.client.run_coroutine(go)


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


def print_summary(records: Iterable[dict[str, Any]], scorer: LongRewardScorer | None = None) -> None:
    """Per dimension: mean, spread, distribution, tampered (scored 0: the response could have supplied the
    verdict; whose fault: the evaluated text) and unscored counts (the judge's); then the flags and how many
    rewards are partial. Streams the records (only the numbers are kept)."""
    keys = (*DIMENSIONS, "reward")
    values: dict[str, array[float]] = {k: array("d") for k in keys}
    reasons: dict[str, Counter[str]] = {k: Counter() for k in keys}
    tampered: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    errors = prompts = responses = partial = 0
    for rec in records:
        errors += "error" in rec
        prompts += "results" in rec
        for r in rec.get("results", []):
            responses += 1
            flags.update(r.get("flags", []))
            tampered.update(list(r.get("tampered") or {}))  # its dimensions (the values are reasons)
            tampered["reward"] += bool(r.get("tampered"))
            partial += r.get("reward") is not None and bool(r.get("unscored"))
            for dim in keys:
                if r.get(dim) is not None:
                    values[dim].append(float(r[dim]))
                elif dim == "reward":
                    reasons[dim]["no dimension scored"] += 1
                elif dim in r.get("unscored", {}):
                    reasons[dim][r["unscored"][dim]] += 1
    t = Table(title=f"LongReward: {responses} responses in {prompts} prompts")
    for col in ("", "counted", "mean", "std", "p10 / p50 / p90", "0-2 2-4 4-6 6-8 8-10", "tampered",
                "unscored (top reason)"):
        t.add_column(col, justify="left" if col in ("", "unscored (top reason)") else "right")
    for dim in keys:
        vals = list(values[dim])
        top = reasons[dim].most_common(1)
        un = sum(reasons[dim].values())
        t.add_row(dim, str(len(vals)), f"{np.mean(vals):.2f}" if vals else "-", f"{np.std(vals):.2f}" if vals else "-",
                  _quantiles(vals), _histogram(vals), str(tampered[dim]),
                  f"{un}" + (f" ({_short(top[0][0])})" if top else ""))
    out_console.print(t)
    out_console.print("tampered: the verdict could be the response's own (scored 0, counted); unscored: the judge's "
                      "(left out, counted)", markup=False)
    out_console.print(f"partial rewards (fewer dimensions averaged): {partial}", markup=False)
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
