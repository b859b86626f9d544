"""``lr-eval longrewardbench``: judge Long-RewardBench with a configured judge and report its accuracy.

``--mode prompt`` (default) asks the judge with the benchmark's own pairwise / ranking prompts (pairs in both
orders); ``--mode longreward`` scores every candidate with LongReward and prefers the higher reward. Data:
``--data`` (a folder of ``<Task>.jsonl`` files or one file; default: the pinned hub dataset). ``-o`` writes
the report (JSON), ``--items`` one record per item (JSONL). Every judge call goes through the judge client,
so an interrupted run resumes from its cache when rerun; ``--dry-run`` prints the calls, tokens and cost a
run would take, sending nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from lr_eval.config import JudgeConfig, add_judge_args, build_client
from lr_eval.jsonl import check_paths, write_jsonl_atomic, write_text_atomic
from lr_eval.progress import console
from lr_eval.report import print_usage
from lr_eval.reward.engine import build_scorer
from lr_eval.reward.settings import RewardSettings, add_reward_args

from .judge_config import JudgeNotConfigured, no_judge_message
from .longrewardbench import (
    CUT_HEAD,
    CUT_LIMIT,
    CUT_TAIL,
    DATA_KEY,
    FORMATS,
    PAPER_COUNTS,
    PROMPTS_KEY,
    SEED,
    TASKS,
    PromptCutter,
    Prompts,
    judge_longreward,
    judge_official,
    load_items,
)
from .longrewardbench_metrics import rows, summarize

out_console = Console(width=None if sys.stdout.isatty() else 160)


def _names(value: str, known: tuple[str, ...], what: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {bad[0] if bad else value!r} (known: {', '.join(known)})")
    return names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("longrewardbench", help="Long-RewardBench: a judge's accuracy on long-context preferences",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("prompt", "longreward"), default="prompt",
                   help="the benchmark's own judge prompts (default) or LongReward rewards")
    p.add_argument("--data", metavar="PATH", help="folder of <Task>.jsonl files, or one such file")
    p.add_argument("--tasks", type=lambda v: _names(v, TASKS, "task"), default=list(TASKS),
                   help=f"comma-separated (default all: {','.join(TASKS)}; ignored with --data FILE)")
    p.add_argument("--formats", type=lambda v: _names(v, FORMATS, "format"), default=list(FORMATS),
                   help="PairWise,BestOfN (default both)")
    p.add_argument("--limit", type=int, metavar="N", help="the first N items of each task")
    p.add_argument("--prompts", metavar="FILE", help="local copy of the official utils/prompt.py")
    p.add_argument("--seed", type=int, default=SEED, help="the Best-of-N shuffle's seed (default %(default)s)")
    p.add_argument("-o", "--output", metavar="REPORT.json", help="the report as JSON")
    p.add_argument("--items", metavar="ITEMS.jsonl", help="one record per judged item")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    p.add_argument("--cut-tokenizer", metavar="NAME|PATH",
                   help="prompt mode: the judge's tokenizer (hub name or local path, with its chat template); a "
                        f"prompt of {CUT_LIMIT:,} templated tokens or more is cut to its first {CUT_HEAD:,} and last "
                        f"{CUT_TAIL:,}, as the official evaluator does (default: prompts are sent whole)")
    add_judge_args(p)
    add_reward_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = JudgeConfig.from_args(args)
    if not cfg.configured:
        raise JudgeNotConfigured(no_judge_message("lr-eval longrewardbench"))
    metadata: dict[str, Any] = {k: v for k, v in ((DATA_KEY, args.data), (PROMPTS_KEY, args.prompts)) if v}
    # the one path rule, before any item is read or any request sent
    check_paths({"report (-o)": None if cfg.dry_run else args.output,
                 "items (--items)": None if cfg.dry_run else args.items, **cfg.written_paths(),
                 "embedding cache (--embed-cache)": _embed_cache(args)},
                {"data (--data)": args.data, "prompts (--prompts)": args.prompts, **cfg.read_paths()})
    cut = _cutter(args.cut_tokenizer, args.mode)  # loaded before any request: a bad name stops here
    items = load_items(metadata, args.tasks, args.formats)
    if args.limit is not None:
        items = [i for task in dict.fromkeys(i.task for i in items)
                 for i in [x for x in items if x.task == task][:args.limit]]
    if not items:
        raise ValueError("no items to judge (check --data, --tasks and --formats)")
    counts = Counter(i.task for i in items)
    if args.limit is None and set(args.formats) == set(FORMATS):
        for task, n in counts.items():
            if task in PAPER_COUNTS and n != PAPER_COUNTS[task]:
                console.print(f"note: {task} has {n} items, the paper's has {PAPER_COUNTS[task]}", markup=False)
    if args.mode == "prompt":
        prompts = Prompts.load(metadata)
        client = build_client(cfg)
        verdicts, report = judge_official(items, client, prompts, args.seed, args.reasks, judge=cfg.describe(),
                                          cut=cut)
    else:
        settings = RewardSettings.from_args(args)
        scorer = build_scorer(settings, cfg)
        client = scorer.client
        verdicts, report = judge_longreward(items, scorer, cfg, settings.groups_in_flight)
    if cfg.dry_run:
        judgements = sum(len(v.calls) for v in verdicts)
        print_usage(client.meter, title=f"dry run ({args.mode}): {len(items)} items, {judgements} judgements; "
                                        "estimate, nothing sent")
        return 0
    records = [v.to_dict() for v in verdicts]
    summary = summarize(records, n_boot=args.bootstrap)
    result = {"benchmark": "Long-RewardBench", "mode": args.mode, "items_per_task": dict(counts), "summary": summary,
              "judge": report.to_dict()}
    if args.items:
        write_jsonl_atomic(args.items, records)
    if args.output:
        write_text_atomic(args.output, json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print_report(summary, args.mode)
    print_usage(client.meter)
    if args.output or args.items:
        console.print(f"wrote {', '.join(str(p) for p in (args.output, args.items) if p)}", markup=False)
    return 0


def _cutter(name: str | None, mode: str) -> PromptCutter | None:
    """The official prompt cut with the judge's tokenizer (`--cut-tokenizer`), for prompt mode only."""
    if name is None:
        return None
    if mode != "prompt":
        raise ValueError("--cut-tokenizer applies to --mode prompt (LongReward mode has --judge-window)")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError, KeyError, TypeError) as e:  # transformers' messages span lines: one line here
        raise ValueError(f"--cut-tokenizer {name}: cannot load a tokenizer ({type(e).__name__}: "
                         f"{' '.join(str(e).split())})") from None
    return PromptCutter(tokenizer, name)


def _embed_cache(args: argparse.Namespace) -> str | None:
    """The embedding cache LongReward mode writes when one is named (its default sits beside the judge cache)."""
    value = getattr(args, "embed_cache", None) if args.mode == "longreward" else None
    return None if not value or str(value).lower() == "none" else str(value)


def print_report(summary: dict[str, Any], mode: str, where: Console = out_console) -> None:
    t = Table(title=f"Long-RewardBench accuracy ({mode}), % with 95% bootstrap interval")
    for col in ("cell", "accuracy", "n", "95% CI"):
        t.add_column(col, justify="left" if col == "cell" else "right")
    for row in rows(summary):
        t.add_row(*row)
    where.print(t)
    s, c = summary["statuses"], summary["consistency"]
    counted = summary["accuracy_counted"]
    where.print(f"judgements: {summary['judgements']} ({', '.join(f'{k} {v}' for k, v in s.items())}; ties "
                f"{summary['ties']}, partial rewards {summary['partial_reward']}); items: "
                f"{', '.join(f'{k} {v}' for k, v in summary['item_statuses'].items())}; accuracy over counted items "
                f"(unscored left out): {'-' if counted is None else f'{100 * counted:.1f}%'}", markup=False)
    if c["pairs_both_scored"]:
        where.print(f"both-order consistency: {c['consistent']}/{c['pairs_both_scored']} pairs; first position "
                    f"preferred in {100 * c['first_position_preferred']:.1f}% of scored pair judgements", markup=False)
