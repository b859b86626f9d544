"""``lr-eval mtbench judge`` and ``lr-eval mtbench show``: MT-Bench on FastChat's own files.

``judge ANSWERS.jsonl... -o JUDGMENTS.jsonl`` reads FastChat ``model_answer`` files (``question_id``,
``model_id``, ``choices[0].turns``) and writes FastChat's ``model_judgment`` format, one row per question
and turn: ``question_id``, ``model``, ``judge`` ([judge model, prompt name]), ``user_prompt`` (the exact
prompt sent), ``judgment``, ``score``, ``turn``, ``tstamp``; an unscored row has ``score: null`` and
``unscored`` (the reason), which FastChat's own show_result also leaves out of its means; a tampered row
(a rating the answer could have supplied, `lr_eval.trust`) has ``score: 1`` and ``tampered`` (the reason). Rows come in
FastChat's order (turn 1 of the questions without and then with a reference, then turn 2 likewise). The
model is named as FastChat names it: its answer file's stem, which for gen_model_answer's default path is
the last component of ``model_id`` (``--answer-model`` overrides). Every judge call goes through the
judge client, so an interrupted run resumes from the cache when rerun; ``--dry-run`` estimates the cost.

``show JUDGMENTS.jsonl... [--json]`` prints FastChat's show_result per model (turn 1, turn 2, average of
the scored judgments), the per-category means over both turns and the unscored counts; ``--json`` prints
one object per model and line: ``model``, ``turn1``, ``turn2``, ``overall``, ``n`` (scored judgments),
``unscored``, ``categories``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lr_eval.config import JudgeConfig, add_judge_args, build_client
from lr_eval.jsonl import InputError, check_paths, read_jsonl, require, write_jsonl_atomic
from lr_eval.progress import console
from lr_eval.records import TAMPERED, UNSCORED
from lr_eval.report import print_usage

from .judging import JudgeNotConfigured, judge_samples, no_judge_message
from .mtbench import (
    FILES,
    REFERENCE_CATEGORIES,
    MTBenchSpec,
    Question,
    Rubric,
    choice_turns,
    conversation,
    data_file,
    read_questions,
    summarize,
)

#: Tables of results go to stdout (progress and messages to stderr).
out_console = Console(width=None if sys.stdout.isatty() else 160)


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--questions", metavar="FILE",
                   help=f"question.jsonl (default: FastChat's, or {FILES['questions'][3]})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mtbench", help="MT-Bench (FastChat llm_judge single-answer grading) on FastChat's files",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = p.add_subparsers(dest="mtbench_command", metavar="{judge,show}", required=True)
    j = cmds.add_parser("judge", help="judge FastChat model answers into FastChat model judgments")
    j.add_argument("answers", nargs="+", metavar="ANSWERS.jsonl", help="FastChat model_answer files")
    j.add_argument("-o", "--output", required=True, metavar="JUDGMENTS.jsonl", help="FastChat model_judgment file")
    _data_args(j)
    j.add_argument("--references", metavar="FILE",
                   help=f"reference answers (default: FastChat's gpt-4.jsonl, or {FILES['references'][3]})")
    j.add_argument("--judge-prompts", metavar="FILE",
                   help=f"judge_prompts.jsonl (default: FastChat's, or {FILES['judge_prompts'][3]})")
    j.add_argument("--answer-model", metavar="NAME", help="the model's name in the judgments (one answers file)")
    j.add_argument("--reasks", type=int, default=0, help="re-asks of a judgment without a rating (default 0, as "
                                                         "FastChat)")
    add_judge_args(j)
    j.set_defaults(func=run_judge)
    s = cmds.add_parser("show", help="FastChat's show_result, per-category means and unscored counts")
    s.add_argument("judgments", nargs="+", metavar="JUDGMENTS.jsonl", help="FastChat model_judgment files")
    _data_args(s)
    s.add_argument("--json", action="store_true", help="one JSON object per model and line")
    s.set_defaults(func=run_show)


def _metadata(args: argparse.Namespace) -> dict[str, Any]:
    """The CLI's data options as the lm-eval task's --metadata keys (one resolution for both)."""
    given = {"questions": args.questions, "references": getattr(args, "references", None),
             "judge_prompts": getattr(args, "judge_prompts", None)}
    return {FILES[kind][2]: value for kind, value in given.items() if value}


# ------------------------------------------------------------------------------------------------ judge


def read_answers(paths: Sequence[Path], questions: Mapping[int, Question],
                 name: str | None) -> dict[str, dict[int, tuple[str, ...]]]:
    """model -> question_id -> answer turns, from FastChat model_answer files."""
    out: dict[str, dict[int, tuple[str, ...]]] = {}
    if name and len(paths) > 1:
        raise ValueError("--answer-model names the model of one answers file; give one file")
    for path in paths:
        for line, rec in read_jsonl(path):
            if isinstance(rec, InputError):
                raise rec
            qid = require(rec, "question_id", int, path, line)
            if qid not in questions:
                raise InputError(path, line, "question_id", f"question {qid} is not in the question file")
            model = name or require(rec, "model_id", str, path, line).rstrip("/").split("/")[-1]
            turns = choice_turns(rec, path, line)
            if len(turns) < len(questions[qid].turns):
                raise InputError(path, line, "choices[0].turns",
                                 f"{len(turns)} turns, question {qid} has {len(questions[qid].turns)}")
            if qid in out.setdefault(model, {}):
                raise InputError(path, line, "question_id", f"a second answer of {model} to question {qid}")
            out[model][qid] = turns
    if not out:
        raise ValueError(f"{paths[0]}: no answers")
    return out


def check_judge_paths(args: argparse.Namespace, cfg: JudgeConfig) -> None:
    """Before any paid request: the output and the judge cache are writable files, neither another nor any
    file the command reads (answers, --questions, --references, --judge-prompts, --prices), links resolved."""
    reads: dict[str, str | None] = {f"answers file {a}": a for a in args.answers}
    reads.update({"--questions file": args.questions, "--references file": args.references,
                  "--judge-prompts file": args.judge_prompts, **cfg.read_paths()})
    check_paths({"output (-o)": args.output, **cfg.written_paths()}, reads)


def plan(questions: Sequence[Question], answers: Mapping[str, Mapping[int, tuple[str, ...]]]
         ) -> list[tuple[str, dict[str, Any]]]:
    """(model, conversation) to judge, in FastChat's match order."""
    items = []
    for turn in (1, 2):
        for with_ref in (False, True):
            for q in questions:
                if (q.category in REFERENCE_CATEGORIES) != with_ref or len(q.turns) < turn:
                    continue
                for model in sorted(answers):
                    if q.question_id in answers[model]:
                        items.append((model, conversation(q, answers[model][q.question_id], turn)))
    return items


def _fastchat_score(value: float | None) -> float | int | None:
    return None if value is None else int(value) if float(value).is_integer() else value


def run_judge(args: argparse.Namespace) -> int:
    """Returns 1 when a judge call failed (its rows are unscored with the error), else 0."""
    cfg = JudgeConfig.from_args(args)
    if not cfg.configured:
        raise JudgeNotConfigured(no_judge_message("lr-eval mtbench judge"))
    check_judge_paths(args, cfg)
    output, inputs = Path(args.output), [Path(a) for a in args.answers]
    metadata = _metadata(args)
    questions = read_questions(data_file("questions", metadata))
    by_id = {q.question_id: q for q in questions}
    answers = read_answers(inputs, by_id, args.answer_model)
    rubric = Rubric.load(metadata)
    rubric.check([by_id[qid] for model in answers.values() for qid in model])
    items = plan(questions, answers)
    client = build_client(cfg)
    spec = MTBenchSpec("mtbench", rubric)
    verdicts, report = judge_samples(spec, client, [c for _, c in items],
                                     [c["answers"][c["turn"] - 1] for _, c in items], args.reasks,
                                     desc="judging MT-Bench")
    if cfg.dry_run:
        print_usage(client.meter, title=f"dry run: {len(items)} judgments, estimate (nothing sent)")
        return 0
    rows = []
    for (model, conv), verdict in zip(items, verdicts, strict=True):
        [call] = verdict.calls
        row = {"question_id": conv["question"].question_id, "model": model,
               "judge": [client.model, call.details["prompt"]], "user_prompt": call.details["user_prompt"],
               "judgment": call.answer, "score": _fastchat_score(verdict.value), "turn": conv["turn"],
               "tstamp": time.time()}
        if "reask_answer" in call.details:
            row["reask_judgment"] = call.details["reask_answer"]
        if verdict.status == UNSCORED:
            row["unscored"] = verdict.reason
        elif verdict.status == TAMPERED:
            row["tampered"] = verdict.reason
        rows.append(row)
    write_jsonl_atomic(output, rows)
    print_summary(summarize(rows, {q.question_id: q.category for q in questions}))
    print_usage(client.meter)
    failed = sum(1 for v in verdicts if v.calls[0].details.get("error"))
    unscored, tampered = report.unscored_items, report.tampered_items
    console.print(f"wrote {len(rows)} judgments to {output}"
                  + (f"; {unscored} unscored (no rating)" if unscored else "")
                  + (f"; {tampered} tampered (a rating the answer could have supplied: scored 1)" if tampered
                     else ""), markup=False)
    if failed:
        console.print(f"{failed} judge calls failed (see 'unscored' in {output}); rerun to retry them",
                      style="red", markup=False)
    return 1 if failed else 0


# ------------------------------------------------------------------------------------------------- show


#: MT-Bench ratings: 1-10 (FastChat's clamp); -1 or null is an unscored judgment.
SCORE_RANGE = (1, 10)


def read_judgments(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The judgments of all files; a second judgment of the same (model, question, turn), in one file or
    across files (the same file given twice), is refused: it would be counted twice."""
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, int, int], str] = {}
    for path in paths:
        for line, rec in read_jsonl(path):
            if isinstance(rec, InputError):
                raise rec
            model = require(rec, "model", str, path, line)
            qid = require(rec, "question_id", int, path, line)
            turn = rec.get("turn")
            if isinstance(turn, bool) or turn not in (1, 2):
                raise InputError(path, line, "turn", "expected 1 or 2")
            score = rec.get("score")
            low, high = SCORE_RANGE
            if score is not None and score != -1 and (
                    isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score)
                    or not low <= score <= high):
                raise InputError(path, line, "score", f"expected a rating {low}-{high}, null or -1 (unscored), "
                                                      f"got {score!r}")
            key = (model, qid, turn)
            if key in seen:
                raise InputError(path, line, "question_id", f"a second judgment of {model} on question {qid} "
                                                            f"turn {turn} (the first is {seen[key]})")
            seen[key] = f"{path} line {line}"
            rows.append(rec)
    return rows


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_summary(summary: Sequence[Mapping[str, Any]], where: Console = out_console) -> None:
    t = Table(title="MT-Bench (mean of the scored judgments, 1-10)")
    for col in ("model", "turn 1", "turn 2", "average", "pessimistic", "counted", "tampered", "unscored"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for s in summary:
        t.add_row(s["model"], _fmt(s["turn1"]), _fmt(s["turn2"]), _fmt(s["overall"]), _fmt(s["pessimistic"]),
                  str(s["n"]), str(s["tampered"]), str(s["unscored"]))
    where.print(t)
    cats = sorted({c for s in summary for c in s["categories"]})
    if cats:
        c = Table(title="per category (both turns)")
        c.add_column("model")
        for cat in cats:
            c.add_column(cat, justify="right")
        for s in summary:
            c.add_row(s["model"], *(_fmt(s["categories"].get(cat)) for cat in cats))
        where.print(c)


def run_show(args: argparse.Namespace) -> int:
    rows = read_judgments([Path(p) for p in args.judgments])
    path = data_file("questions", _metadata(args))
    categories = {q.question_id: q.category for q in read_questions(path)}
    for row in rows:
        if int(row["question_id"]) not in categories:
            raise ValueError(f"question {row['question_id']} (model {row['model']}) is not in {path}")
    summary = summarize(rows, categories)
    if args.json:
        for s in summary:
            print(json.dumps(s, ensure_ascii=False))
    else:
        print_summary(summary)
    return 0
