"""The LongReward scoring engine under `lr-eval score` and `lr-train score`: files of groups
({"id", "context", "question", "responses"}) scored streaming, resumably and in input order.

Each finished group is appended to the output at once (and synced), so an interrupted run keeps its
work; a rerun reuses a group whose input_key (a hash of its record and of the options that change its
result, :func:`result_options`) is in the output, and the judge cache makes repeated calls free. At the
end the output is rewritten in input order, with one {"id", "line", "error"} record per bad input line.
"""

from __future__ import annotations

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

from lr_eval.config import JudgeConfig
from lr_eval.jsonl import (
    KEY_FIELD,
    InputError,
    ResumableJsonl,
    check_paths,
    content_key,
    iter_unique,
    read_jsonl,
    require,
    run_window,
)
from lr_eval.progress import console as err_console
from lr_eval.report import print_usage
from lr_eval.types import JudgeStop

from .records import DIMENSIONS, ResponseScore
from .scorer import LongRewardScorer
from .settings import RewardConfig

# Results go to stdout; wide enough for the tables when piped to a file.
out_console = Console(width=None if sys.stdout.isatty() else 130)


def build_scorer(config: RewardConfig, judge: JudgeConfig) -> LongRewardScorer:
    """The LongReward scorer for these settings and this judge: its client, embedder and settings."""
    from lr_eval.config import build_client
    from lr_eval.embed import build_embedder

    cache: Path | None = None
    if config.embed_cache and config.embed_cache.lower() != "none":
        cache = Path(config.embed_cache).expanduser()
    elif config.embed_cache is None and (judge_cache := judge.cache_path()) is not None:
        cache = judge_cache.parent / "embed-cache.sqlite"
    embedder = build_embedder(config.embedder, base_url=config.embed_base_url,
                              api_key_env=config.embed_api_key_env, cache=cache)
    return LongRewardScorer(build_client(judge), config.for_judge(judge), embedder=embedder)


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


def result_options(judge: JudgeConfig, scorer: LongRewardScorer, audit: bool) -> dict[str, Any]:
    """What changes a prompt's result besides its own record: a change here scores it again on resume. The
    judge's part is its backend and the client's keyed settings, the same list its cache key is built from
    (model, system prompt, output budget, structured form, score mode: lr_eval.judge.KEYED_SETTINGS). The
    chunking tokenizer is named as resolved: its default depends on what is installed."""
    reward = {**scorer.config.result_key(), "tokenizer": scorer.tokenizer_label}
    return {"reward": reward, "judge": {"backend": judge.backend, **scorer.client.keyed_settings()},
            "audit": audit}


def check_score_paths(input_path: str | Path, output: str | Path | None, judge: JudgeConfig,
                      embed_cache: str | None) -> None:
    """Output, judge cache and embedding cache writable, none of them another or the input: before any request."""
    embed = None  # the embedding cache build_scorer opens
    judge_cache = judge.cache_path()
    if embed_cache and embed_cache.lower() != "none":
        embed = Path(embed_cache)
    elif embed_cache is None and judge_cache is not None:
        embed = judge_cache.parent / "embed-cache.sqlite"
    check_paths({"output": None if judge.dry_run else output, **judge.written_paths(),
                 "embedding cache (--embed-cache)": embed}, {"input": input_path, **judge.read_paths()})


def score_file(settings: RewardConfig, judge: JudgeConfig, input_path: str | Path, output: str | Path,
               audit: bool = True) -> int:
    """Score every item of `input_path` into `output` (streaming, resumable by content); returns the number
    of items not scored (bad lines). A fatal judge error or the budget is raised after the output is
    written. `audit` False leaves the audit trail out."""
    check_score_paths(input_path, output, judge, settings.embed_cache)
    scorer = build_scorer(settings, judge)
    options = result_options(judge, scorer, audit)
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
