"""``lr-eval judge-agreement``: how often a judge agrees with recorded reference verdicts, and how it is biased.

Reference formats (``--format auto`` tells them apart by their fields):

* ``fastchat-single``: FastChat ``model_judgment`` single-answer grading (``question_id``, ``model``, ``judge``,
  ``score``, ``turn``; -1 or null = the reference failed: left out and counted). A rerun row of the same
  question, turn and model replaces a failed one.
* ``fastchat-pair``: FastChat ``model_judgment`` pairwise (``question_id``, ``model_1``, ``model_2``,
  ``g1_winner``, ``g2_winner``, ``turn``): judged in both orders; the verdict is the two orders' common verdict,
  a tie when they differ (FastChat's rule), and the two orders give the position consistency.
* ``mtbench-human``: MT-Bench human judgments (``question_id``, ``model_a``, ``model_b``, ``winner``, ``judge``,
  ``turn``, optionally ``conversation_a``/``conversation_b``), JSONL or one JSON list; every vote is an item
  (FastChat's compute_agreement counts each human vote), any winner containing "tie" is a tie.
* ``pairs``: ``{"id", "reference": "a"|"b"|"tie", "judge"?: same, "response_a"?, "response_b"?, "length_a"?,
  "length_b"?, "category"?, "model_a"?, "model_b"?}``.
* ``scores``: ``{"id", "reference": number, "judge"?: number, "response"?, "length"?, "category"?, "model"?}``.

The judge's verdicts come from ``--judgments FILE`` (any of the formats; for ``pairs``/``scores`` the ``judge``
field, matched by id, or the reference file's own ``judge`` field), or the configured judge rejudges the
MT-Bench items through the one judge client and FastChat's single-answer grading spec
(:class:`lr_eval.tasks.mtbench.MTBenchSpec`; cache, budget, resume and trust rules apply): a rating per
question, turn and model; a pair is decided by the two answers' ratings (the higher wins, equal ratings are a
tie), so a rejudged pair has no answer order and no position consistency. Answers come from FastChat
``model_answer`` files (``--answers``) or a human judgment's conversations. ``--max-judge-tokens`` caps the
judge's answer (FastChat allows 2048 tokens; the cap is recorded in the report).

An item whose reference or judge verdict is missing, unscored or tampered (a verdict the evaluated text could
have supplied: the record holds the scale's minimum, which is no rating of the judge's) is left out of every
figure and counted with its reason. Figures (:mod:`lr_eval.stats`, percentile bootstrap intervals over items):
agreement with and without ties and accuracy (pairs), Pearson / Spearman / Kendall, mean absolute difference,
exact and within-one agreement (ratings), each per length bucket of the judged text (characters of the answers
the judge reads) and per category; position consistency; length bias; self-preference (the judge's model is an
evaluated model).

``lr-eval judge-report REPORT.json -o PAGE.md|PAGE.html`` writes the report as one page with a plot of the
figures by length bucket.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from lr_eval import stats
from lr_eval.config import JudgeConfig, add_judge_args, build_client
from lr_eval.jsonl import BOM, InputError, check_input_file, check_paths, read_json, require, write_text_atomic
from lr_eval.progress import console
from lr_eval.records import SCORED, TAMPERED, Verdict
from lr_eval.report import print_usage
from lr_eval.types import ChatRequest

from .judge_config import JudgeNotConfigured, no_judge_message
from .judged_samples import judge_samples
from .mtbench import FILES, JUDGE_MAX_TOKENS, MTBenchSpec, Question, Rubric, conversation, data_file, read_questions
from .mtbench import _records as jsonl_records
from .mtbench_cli import read_answers

out_console = Console(width=None if sys.stdout.isatty() else 160)

FORMATS = ("auto", "fastchat-single", "fastchat-pair", "mtbench-human", "pairs", "scores")
DEFAULT_EDGES = (1000.0, 2000.0, 4000.0, 8000.0)
LENGTH_UNIT = "characters of the answers the judge reads"
#: The figure a one-line summary (the leaderboard's Judge table) shows, per kind.
NO_VERDICT = "no judge verdict"
HEADLINE = {"scores": ("spearman", "kendall", "pearson"), "pairs": ("agreement", "agreement_without_ties")}


# ------------------------------------------------------------------------------------------------ records


@dataclass
class Item:
    """One reference verdict: a rating of one answer (kind "scores") or a choice between two (kind "pairs").

    `key` names what was judged, so that the judge's verdict on the same thing can be found: (question_id,
    turn, model) for a rating, (question_id, turn, model_a, model_b) with model_a < model_b for a pair (the
    verdicts flipped to match), ("id", id) for the plain formats.
    """

    key: tuple[Any, ...]
    id: str
    reference: float | str | None
    reference_unscored: str | None = None
    category: str = "unknown"
    turn: int | None = None
    models: tuple[str, ...] = ()
    lengths: tuple[int, ...] = ()
    reference_orders: tuple[str, str] | None = None
    judge: float | str | None = None
    judge_unscored: str | None = NO_VERDICT
    judge_orders: tuple[str, str] | None = None
    rationale: str | None = None

    @property
    def length(self) -> int | None:
        return sum(self.lengths) if self.lengths else None

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "key": list(self.key), "category": self.category, "turn": self.turn,
             "models": list(self.models), "lengths": list(self.lengths), "length": self.length,
             "reference": self.reference, "reference_unscored": self.reference_unscored,
             "judge": self.judge, "judge_unscored": self.judge_unscored}
        if self.reference_orders:
            d["reference_orders"] = list(self.reference_orders)
        if self.judge_orders:
            d["judge_orders"] = list(self.judge_orders)
        if self.rationale is not None:
            d["rationale"] = self.rationale
        return d


@dataclass
class KeyVerdict:
    """The judge's verdict on one item key (read from a file, or a rating drawn from a verdict record)."""

    value: float | str | None
    unscored: str | None = None
    orders: tuple[str, str] | None = None


@dataclass
class Reference:
    """A reference file's items, its format, the judges named in it, and what it holds for rejudging."""

    path: str
    format: str
    kind: str
    items: list[Item]
    judges: list[str]
    conversations: dict[tuple[Any, ...], tuple[str, ...]] = field(default_factory=dict)  # (qid, model) -> answers
    superseded: int = 0


# ------------------------------------------------------------------------------------------------ readers


def _records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """JSONL records, or the elements of one JSON list (numbered from 1); the first bad one is the error."""
    p = check_input_file(path)
    with open(p, "rb") as f:
        head = f.read(4096)
    if head.removeprefix(BOM).lstrip().startswith(b"["):
        data = read_json(p)
        out = []
        for n, rec in enumerate(data, 1):
            if not isinstance(rec, dict):
                raise InputError(path, n, None, f"element {n} is not an object")
            out.append((n, rec))
        return out
    return jsonl_records(p)


def detect_format(rec: Mapping[str, Any]) -> str:
    """The reference format of a record, from its fields."""
    if "g1_winner" in rec:
        return "fastchat-pair"
    if "winner" in rec and "model_a" in rec:
        return "mtbench-human"
    if "score" in rec and "model" in rec and "question_id" in rec:
        return "fastchat-single"
    if "reference" in rec:
        ref = rec["reference"]
        return "scores" if isinstance(ref, (int, float)) and not isinstance(ref, bool) else "pairs"
    return "unknown"


def _judge_name(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "/".join(str(v) for v in value)
    return str(value) if value is not None else ""


def _turn(rec: Mapping[str, Any], path: str | Path, line: int) -> int:
    turn = rec.get("turn", 1)
    if isinstance(turn, bool) or not isinstance(turn, int) or turn < 1:
        raise InputError(path, line, "turn", f"expected a turn number (1, 2, ...), got {turn!r}")
    return turn


def tampered_reason(reason: str | None) -> str:
    """Why a tampered verdict is left out: it is the scale's minimum, forced, not the judge's rating."""
    return f"tampered by the evaluated text ({reason or 'no reason given'})"


def _score(value: Any, path: str | Path, line: int, name: str) -> tuple[float | None, str | None]:
    """A rating, or None with the reason (null, FastChat's -1)."""
    if value is None:
        return None, "no rating (null)"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(path, line, name, f"expected a number (or null / -1 for a failed judgment), got {value!r}")
    if value == -1:
        return None, "failed judgment (-1)"
    return float(value), None


_WINNERS = {"model_1": "a", "model_2": "b", "model_a": "a", "model_b": "b", "a": "a", "b": "b", "A": "a", "B": "b",
            0: "a", 1: "b"}


def _verdict(value: Any, path: str | Path, line: int, name: str) -> tuple[str | None, str | None]:
    """A pairwise verdict ("a", "b", "tie") or None with the reason ("error" and null are failed judgments)."""
    if value is None or value == "error":
        return None, f"failed judgment ({value!r})"
    if isinstance(value, str) and "tie" in value.lower():
        return stats.TIE, None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value not in _WINNERS:
        raise InputError(path, line, name, f"expected a winner (model_1/model_2, model_a/model_b, a/b, tie or "
                                           f"error), got {value!r}")
    return _WINNERS[value], None


def _flip(v: str) -> str:
    return {"a": "b", "b": "a"}.get(v, v)


def _pair_key(qid: Any, turn: int, a: str, b: str) -> tuple[tuple[Any, ...], bool]:
    """The canonical key of a pair and whether (a, b) had to be swapped to get it."""
    return ((qid, turn, a, b), False) if a <= b else ((qid, turn, b, a), True)


def _combine_orders(g1: str | None, g2: str | None) -> tuple[str | None, str | None]:
    """A both-order verdict: the common verdict, a tie when the orders differ (FastChat), unscored if one failed."""
    if g1 is None or g2 is None:
        return None, "failed judgment in one order"
    return (g1 if g1 == g2 else stats.TIE), None


def read_reference(path: str | Path, fmt: str = "auto", questions: Mapping[int, Question] | None = None
                   ) -> Reference:
    """The items of a reference file (see the module docstring for the formats)."""
    recs = _records(path)
    if not recs:
        raise InputError(path, None, None, "no records")
    if fmt == "auto":
        fmt = detect_format(recs[0][1])
        if fmt == "unknown":
            raise InputError(path, recs[0][0], None, "cannot tell the format from the fields (give --format: "
                                                     f"{', '.join(FORMATS[1:])})")
    cats = {q.question_id: q.category for q in (questions or {}).values()}
    items: list[Item] = []
    judges: Counter[str] = Counter()
    convs: dict[tuple[Any, ...], tuple[str, ...]] = {}
    superseded = 0
    kind = "scores" if fmt in ("fastchat-single", "scores") else "pairs"
    by_key: dict[tuple[Any, ...], int] = {}
    value: float | None
    why: str | None
    for line, rec in recs:
        if fmt == "fastchat-single":
            qid = require(rec, "question_id", int, path, line)
            model = require(rec, "model", str, path, line)
            turn = _turn(rec, path, line)
            value, why = _score(rec.get("score"), path, line, "score")
            if isinstance(rec.get("tampered"), str):  # lr-eval mtbench: the score is the forced minimum
                value, why = None, tampered_reason(rec["tampered"])
            judges[_judge_name(rec.get("judge"))] += 1
            item = Item((qid, turn, model), f"{qid}/{turn}/{model}", value, why, cats.get(qid, "unknown"), turn,
                        (model,))
            prev = by_key.get(item.key)
            if prev is not None:  # a rerun: a scored row replaces a failed one; two scored rows are an error
                if items[prev].reference is not None and value is not None:
                    raise InputError(path, line, "question_id", f"a second rating of question {qid}, turn {turn}, "
                                                                f"model {model}")
                superseded += 1
                if value is not None:
                    items[prev] = item
                continue
            by_key[item.key] = len(items)
            items.append(item)
        elif fmt in ("fastchat-pair", "mtbench-human"):
            qid = require(rec, "question_id", int, path, line)
            a_name, b_name = ("model_1", "model_2") if fmt == "fastchat-pair" else ("model_a", "model_b")
            a, b = require(rec, a_name, str, path, line), require(rec, b_name, str, path, line)
            turn = _turn(rec, path, line)
            key, swap = _pair_key(qid, turn, a, b)
            orders = None
            if fmt == "fastchat-pair":
                g1, _ = _verdict(rec.get("g1_winner"), path, line, "g1_winner")
                g2, _ = _verdict(rec.get("g2_winner"), path, line, "g2_winner")
                pick, why = _combine_orders(g1, g2)
                if g1 is not None and g2 is not None:
                    orders = (_flip(g1), _flip(g2)) if swap else (g1, g2)
            else:
                pick, why = _verdict(rec.get("winner"), path, line, "winner")
                for side, name in (("a", a), ("b", b)):
                    turns = _assistant_turns(rec.get(f"conversation_{side}"), path, line, f"conversation_{side}")
                    if turns:
                        convs[(qid, name)] = turns
            judges[_judge_name(rec.get("judge"))] += 1
            items.append(Item(key, f"{qid}/{turn}/{key[2]}-vs-{key[3]}#{line}",
                              _flip(pick) if swap and pick is not None else pick, why, cats.get(qid, "unknown"),
                              turn, key[2:], reference_orders=orders))
        else:
            rid = str(require(rec, "id", (str, int), path, line))
            if ("id", rid) in by_key:
                raise InputError(path, line, "id", f"duplicate id {rid!r}")
            item = _plain_item(rec, fmt, rid, path, line)
            by_key[item.key] = len(items)
            items.append(item)
            if "judge" in rec:
                v = _plain_verdict(rec, fmt, path, line, "judge")
                item.judge, item.judge_unscored = v.value, v.unscored
            judges[str(rec.get("reference_judge", "reference"))] += 1
    return Reference(str(path), fmt, kind, items, sorted(judges), convs, superseded)


def _assistant_turns(conv: Any, path: str | Path, line: int, name: str) -> tuple[str, ...]:
    if conv is None:
        return ()
    if not isinstance(conv, list) or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in conv):
        raise InputError(path, line, name, "expected a list of {\"role\", \"content\"} messages")
    return tuple(m["content"] for m in conv if m.get("role") == "assistant")


def _plain_item(rec: dict[str, Any], fmt: str, rid: str, path: str | Path, line: int) -> Item:
    v = _plain_verdict(rec, fmt, path, line, "reference")
    category = str(rec.get("category", "unknown"))
    if fmt == "scores":
        length = rec.get("length", len(rec["response"]) if isinstance(rec.get("response"), str) else None)
        one = () if length is None else (_length(length, path, line, "length"),)
        model = rec.get("model")
        return Item(("id", rid), rid, v.value, v.unscored, category, None, (str(model),) if model else (), one)
    lengths: tuple[int, ...] = ()
    if isinstance(rec.get("response_a"), str) and isinstance(rec.get("response_b"), str):
        lengths = (len(rec["response_a"]), len(rec["response_b"]))
    elif "length_a" in rec or "length_b" in rec:
        lengths = (_length(rec.get("length_a"), path, line, "length_a"),
                   _length(rec.get("length_b"), path, line, "length_b"))
    models = tuple(str(rec[k]) for k in ("model_a", "model_b") if rec.get(k))
    return Item(("id", rid), rid, v.value, v.unscored, category, None, models if len(models) == 2 else (), lengths)


def _length(value: Any, path: str | Path, line: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InputError(path, line, name, f"expected a length (a number >= 0), got {value!r}")
    return int(value)


def _plain_verdict(rec: dict[str, Any], fmt: str, path: str | Path, line: int, name: str) -> KeyVerdict:
    if name not in rec:
        raise InputError(path, line, name, "missing")
    if fmt == "scores":
        value, why = _score(rec[name], path, line, name)
        return KeyVerdict(value, why)
    value2, why2 = _verdict(rec[name], path, line, name)
    return KeyVerdict(value2, why2)


Lookup = Callable[[tuple[Any, ...]], "KeyVerdict | None"]


def read_judgments(path: str | Path, kind: str, fmt: str = "auto") -> Lookup:
    """The judge's verdicts from a file in any reference format, as a lookup by key; a file of ratings also
    decides pairs (the higher-rated answer wins)."""
    ref = read_reference(path, fmt)
    out: dict[tuple[Any, ...], KeyVerdict] = {}
    for it in ref.items:
        if ref.format in ("pairs", "scores") and (it.judge is not None or it.judge_unscored != NO_VERDICT):
            value, why = it.judge, it.judge_unscored
        else:
            value, why = it.reference, it.reference_unscored
        if it.key not in out:  # several votes on one pair (human files): the first is this judge's verdict
            out[it.key] = KeyVerdict(value, why, it.reference_orders)
    if ref.kind == "scores" and kind == "pairs":
        return pairs_from_ratings(out)
    if ref.kind != kind:
        raise InputError(path, None, None, f"holds {ref.kind} ({ref.format}); the reference holds {kind}")
    return out.get


def pairs_from_ratings(ratings: Mapping[tuple[Any, ...], KeyVerdict]) -> Lookup:
    """A lookup of pair verdicts (question_id, turn, model_a, model_b) from ratings keyed (question_id, turn,
    model): the higher rating wins, equal ratings are a tie, unscored when either answer is."""
    def lookup(key: tuple[Any, ...]) -> KeyVerdict | None:
        if len(key) != 4:
            return None
        qid, turn, a, b = key
        va, vb = ratings.get((qid, turn, a)), ratings.get((qid, turn, b))
        if va is None or vb is None:
            return None
        x, y = va.value, vb.value
        if not isinstance(x, float) or not isinstance(y, float):  # a rating is a float, or None: unscored
            side, why = ("a", va.unscored) if not isinstance(x, float) else ("b", vb.unscored)
            return KeyVerdict(None, f"answer {side} unscored ({why})")
        return KeyVerdict("a" if x > y else "b" if y > x else stats.TIE)

    return lookup


def attach(items: Iterable[Item], lookup: Lookup) -> None:
    """Give each item the judge's verdict on its key (left as "no judge verdict" where there is none)."""
    for it in items:
        v = lookup(it.key)
        if v is not None:
            it.judge, it.judge_unscored, it.judge_orders = v.value, v.unscored, v.orders


# ------------------------------------------------------------------------------------------------ rejudging


class CappedMTBenchSpec(MTBenchSpec):
    """FastChat's single-answer grading with each judge answer capped at `max_tokens` (None: FastChat's 2048)."""

    def __init__(self, task: str, rubric: Rubric, max_tokens: int | None = None):
        super().__init__(task, rubric)
        self.cap = max_tokens

    def requests(self, doc: dict[str, Any], response: str) -> list[ChatRequest]:
        reqs = super().requests(doc, response)
        if self.cap is None:
            return reqs
        return [dataclasses.replace(r, max_tokens=min(self.cap, r.max_tokens or self.cap)) for r in reqs]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "judge_max_tokens": self.cap or JUDGE_MAX_TOKENS}


def rating_jobs(ref: Reference, answers: Mapping[str, Mapping[int, tuple[str, ...]]],
                questions: Mapping[int, Question]) -> list[tuple[tuple[Any, ...], Question, tuple[str, ...], int]]:
    """(rating key, question, answers, turn) for every answer the reference's items need rated, once each."""
    jobs: dict[tuple[Any, ...], tuple[Question, tuple[str, ...], int]] = {}
    for it in ref.items:
        if it.turn is None:
            raise ValueError(f"{ref.path}: {ref.format} items carry no MT-Bench question to rejudge; give the "
                             "judge's verdicts with --judgments (or a 'judge' field)")
        qid = it.key[0]
        if qid not in questions:
            raise ValueError(f"{ref.path}: question {qid} is not in the question file")
        for model in it.models:
            key = (qid, it.turn, model)
            if key in jobs:
                continue
            turns = answers.get(model, {}).get(qid) or ref.conversations.get((qid, model))
            if not turns:
                raise ValueError(f"{ref.path}: no answer of {model} to question {qid} (give its FastChat "
                                 "model_answer file with --answers)")
            if len(turns) < it.turn:
                raise ValueError(f"{ref.path}: {model} has {len(turns)} turn(s) for question {qid}, item needs turn "
                                 f"{it.turn}")
            jobs[key] = (questions[qid], turns, it.turn)
    return [(k, q, a, t) for k, (q, a, t) in jobs.items()]


def answer_lengths(ref: Reference, answers: Mapping[str, Mapping[int, tuple[str, ...]]]) -> None:
    """Length of the judged text of each MT-Bench item: the characters of each model's answers up to its turn."""
    for it in ref.items:
        if it.turn is None:
            continue
        lens: list[int] = []
        for model in it.models:
            turns = answers.get(model, {}).get(it.key[0]) or ref.conversations.get((it.key[0], model))
            if not turns:
                lens = []
                break
            lens.append(sum(len(t) for t in turns[:it.turn]))
        it.lengths = tuple(lens)


# ------------------------------------------------------------------------------------------------ figures


def compare(items: Sequence[Item], kind: str, judge_model: str | None, edges: Sequence[float], iters: int,
            seed: int) -> dict[str, Any]:
    """Every figure of the report over the items with both verdicts; what was left out, with reasons."""
    left: Counter[str] = Counter()
    used: list[Item] = []
    for it in items:
        if it.reference is None:
            left[f"reference: {it.reference_unscored}"] += 1
        elif it.judge is None:
            left[f"judge: {it.judge_unscored}"] += 1
        else:
            used.append(it)
    ref, jud = _values(used, "reference"), _values(used, "judge")
    figures = stats.score_figures if kind == "scores" else stats.pair_figures
    out: dict[str, Any] = {"compared": len(used), "left_out": sum(left.values()), "left_out_reasons": dict(left),
                           "overall": _dicts(figures(ref, jud, iters, seed))}

    def groups(label_of: Any, order: Sequence[str] | None) -> list[dict[str, Any]]:
        by: dict[str, list[Item]] = {}
        for it in used:
            label = label_of(it)
            if label is not None:
                by.setdefault(label, []).append(it)
        names = [n for n in (order or sorted(by)) if n in by]
        return [{"group": n, **_dicts(figures(_values(by[n], "reference"), _values(by[n], "judge"), iters, seed,
                                              key=n))} for n in names]

    out["by_length"] = groups(lambda it: None if it.length is None else stats.length_bucket_label(it.length, edges),
                              stats.bucket_labels(edges))
    out["by_category"] = groups(lambda it: it.category, None)
    out["by_turn"] = groups(lambda it: None if it.turn is None else f"turn {it.turn}", None)
    with_len = [it for it in used if it.lengths]
    judge_name = stats.model_key(judge_model) if judge_model else None
    if kind == "scores":
        out["length_bias"] = _dicts(stats.length_bias_scores(_values(with_len, "reference"),
                                                             _values(with_len, "judge"),
                                                             [sum(i.lengths) for i in with_len], iters, seed))
        own = [bool(judge_name and it.models and stats.model_key(it.models[0]) == judge_name) for it in used]
        out["self_preference"] = _dicts(stats.self_preference_scores(ref, jud, own, iters, seed))
        out["position_consistency"] = {"judge": None, "reference": None,
                                       "note": "ratings of one answer have no answer order"}
    else:
        pairs = [it for it in with_len if len(it.lengths) == 2]
        out["length_bias"] = _dicts(stats.length_bias_pairs(_values(pairs, "reference"), _values(pairs, "judge"),
                                                            [i.lengths[0] for i in pairs],
                                                            [i.lengths[1] for i in pairs], iters, seed))
        sides = [_own_side(it, judge_name) for it in used]
        out["self_preference"] = _dicts(stats.self_preference_pairs(ref, jud, sides, iters, seed))
        pc: dict[str, Any] = {}
        for who, attr in (("judge", "judge_orders"), ("reference", "reference_orders")):
            both = [getattr(it, attr) for it in used if getattr(it, attr)]
            pc[who] = stats.position_consistency([o[0] for o in both], [o[1] for o in both], iters,
                                                 seed).to_dict() if both else None
        pc["note"] = ("verdicts given in both answer orders that agree" if pc["judge"] or pc["reference"] else
                      "no verdicts in both answer orders (a rejudged pair is decided by two ratings)")
        out["position_consistency"] = pc
    if not any(stats.model_key(m) == judge_name for it in used for m in it.models):
        out["self_preference"]["note"] = "none of the evaluated models is the judge's model"
    return out


def _values(items: Sequence[Item], attr: str) -> list[Any]:
    """The reference's or the judge's verdicts of compared items (ratings for scores, "a"/"b"/"tie" for pairs)."""
    return [getattr(it, attr) for it in items]


def _own_side(it: Item, judge_name: str | None) -> str | None:
    if not judge_name or len(it.models) != 2:
        return None
    mine = [stats.model_key(m) == judge_name for m in it.models]
    return None if mine[0] == mine[1] else ("a" if mine[0] else "b")


def _dicts(figs: Mapping[str, stats.Estimate]) -> dict[str, Any]:
    return {k: v.to_dict() for k, v in figs.items()}


# ------------------------------------------------------------------------------------------------ command


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge-agreement", help="agreement of a judge with recorded reference verdicts (FastChat "
                       "judgments, MT-Bench human judgments, plain pairs/scores)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", metavar="REFERENCE", help="reference verdicts (JSONL, or a JSON list)")
    p.add_argument("-o", "--output", required=True, metavar="REPORT.json", help="the report (JSON, items included)")
    p.add_argument("--page", metavar="PAGE.md|PAGE.html", help="also write the report page (see judge-report)")
    p.add_argument("--format", choices=FORMATS, default="auto", help="reference format (default: from the fields)")
    p.add_argument("--judgments", metavar="FILE", help="the judge's verdicts (any format) instead of rejudging")
    p.add_argument("--judgments-format", choices=FORMATS, default="auto")
    p.add_argument("--judge-name", metavar="MODEL", help="the judge's model name, for self-preference and the "
                   "summary, when its verdicts come from a file (default: the file's judge field)")
    p.add_argument("--answers", nargs="+", default=[], metavar="ANSWERS.jsonl",
                   help="FastChat model_answer files of the evaluated models (for rejudging and lengths)")
    p.add_argument("--questions", metavar="FILE", help=f"MT-Bench question.jsonl (default: FastChat's, or "
                                                       f"{FILES['questions'][3]})")
    p.add_argument("--references", metavar="FILE", help="MT-Bench reference answers (default: FastChat's gpt-4)")
    p.add_argument("--judge-prompts", metavar="FILE", help="FastChat judge_prompts.jsonl (default: FastChat's)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N reference items (a cheap check)")
    p.add_argument("--max-judge-tokens", type=int, metavar="N",
                   help=f"cap on each judge answer when rejudging (default FastChat's {JUDGE_MAX_TOKENS})")
    p.add_argument("--reasks", type=int, default=0, help="re-asks of a judgment without a rating (default 0)")
    p.add_argument("--length-edges", default=",".join(f"{e:g}" for e in DEFAULT_EDGES), metavar="E1,E2,...",
                   help="length bucket edges, in characters of the judged answers (default %(default)s)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    add_judge_args(p)
    p.set_defaults(func=run_agreement)
    r = sub.add_parser("judge-report", help="one Markdown or HTML page (tables and a plot) from a judge-agreement "
                       "report")
    r.add_argument("report", metavar="REPORT.json")
    r.add_argument("-o", "--output", required=True, metavar="PAGE.md|PAGE.html")
    r.set_defaults(func=run_report)


def _edges(text: str) -> list[float]:
    try:
        edges = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--length-edges {text!r}: expected numbers separated by commas") from None
    if edges != sorted(set(edges)) or any(e <= 0 for e in edges):
        raise ValueError(f"--length-edges {text!r}: expected positive, strictly increasing numbers")
    return edges


def _metadata(args: argparse.Namespace) -> dict[str, Any]:
    given = {"questions": args.questions, "references": args.references, "judge_prompts": args.judge_prompts}
    return {FILES[kind][2]: value for kind, value in given.items() if value}


def run_agreement(args: argparse.Namespace) -> int:
    """Read, (re)judge, compare, write; returns 0 (1 when judge calls failed: their items are counted)."""
    edges = _edges(args.length_edges)
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    if args.max_judge_tokens is not None and args.max_judge_tokens < 8:
        raise ValueError("--max-judge-tokens must be at least 8 (room for the rating)")
    if args.page:
        _page_kind(args.page)
    cfg = JudgeConfig.from_args(args)
    reads: dict[str, str | None] = {"reference file": args.reference, "--judgments file": args.judgments,
                                    "--questions file": args.questions, "--references file": args.references,
                                    "--judge-prompts file": args.judge_prompts, **cfg.read_paths()}
    reads.update({f"answers file #{i}": a for i, a in enumerate(args.answers, start=1)})
    check_paths({"report (-o)": args.output, "page (--page)": args.page, **cfg.written_paths()}, reads)
    metadata = _metadata(args)
    questions: dict[int, Question] = {}
    ref = read_reference(args.reference, args.format)
    if ref.format not in ("pairs", "scores"):
        questions = {q.question_id: q for q in read_questions(data_file("questions", metadata))}
        ref = read_reference(args.reference, ref.format, questions)
    mtbench_like = ref.format not in ("pairs", "scores")
    if args.limit:
        ref.items = ref.items[:args.limit]
    answers = read_answers([Path(a) for a in args.answers], questions, None) if args.answers else {}
    if mtbench_like:
        answer_lengths(ref, answers)
    judge_info: dict[str, Any]
    failed = 0
    if args.judgments:
        attach(ref.items, read_judgments(args.judgments, ref.kind, args.judgments_format))
        judge_info = {"source": "file", "file": args.judgments, "model": args.judge_name or _file_judge(args.judgments)}
    elif not mtbench_like:
        if all(it.judge is None and it.judge_unscored == NO_VERDICT for it in ref.items):
            raise InputError(args.reference, None, "judge", f"no judge verdicts: {ref.format} items are not rejudged "
                                                            "here; give a 'judge' field or --judgments FILE")
        judge_info = {"source": "reference file's 'judge' field", "model": args.judge_name}
    else:
        if not cfg.configured:
            raise JudgeNotConfigured(no_judge_message("lr-eval judge-agreement"))
        judge_info, failed = rejudge(ref, answers, questions, metadata, cfg, args.max_judge_tokens, args.reasks)
        if cfg.dry_run:
            return 0
    t0 = time.perf_counter()
    figures = compare(ref.items, ref.kind, judge_info.get("model"), edges, args.bootstrap, args.seed)
    report = {"schema": stats.AGREEMENT_REPORT_SCHEMA, "kind": ref.kind,
              "reference": {"file": ref.path, "format": ref.format, "judges": ref.judges, "items": len(ref.items),
                            "superseded_rows": ref.superseded},
              "judge": judge_info, "length_edges": edges, "length_unit": LENGTH_UNIT,
              "bootstrap": {"iters": args.bootstrap, "seed": args.seed, "level": 0.95}, **figures,
              "statistics_seconds": round(time.perf_counter() - t0, 2)}
    report["summary"] = summary(report)
    report["items"] = [it.to_dict() for it in ref.items]
    write_text_atomic(args.output, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    out_console.print(markdown_tables(report), markup=False, highlight=False)
    console.print(f"wrote {args.output}", markup=False)
    if args.page:
        write_page(report, Path(args.page))
        console.print(f"wrote {args.page}", markup=False)
    return 1 if failed else 0


def _file_judge(path: str) -> str | None:
    """The judge model named in a FastChat judgment file (the first row's ``judge[0]``), if any."""
    recs = _records(path)
    judge = recs[0][1].get("judge") if recs else None
    return str(judge[0]) if isinstance(judge, list) and judge else (judge if isinstance(judge, str) else None)


def rejudge(ref: Reference, answers: Mapping[str, Mapping[int, tuple[str, ...]]], questions: Mapping[int, Question],
            metadata: dict[str, Any], cfg: JudgeConfig, max_tokens: int | None, reasks: int) -> tuple[dict[str, Any],
                                                                                                     int]:
    """Rate every answer the items need with the configured judge (MT-Bench single grading) and attach the
    verdicts; returns the judge's description (usage, cost, seconds) and the number of failed calls."""
    rubric = Rubric.load(metadata)
    jobs = rating_jobs(ref, answers, questions)
    rubric.check([q for _, q, _, _ in jobs])
    client = build_client(cfg)
    spec = CappedMTBenchSpec("judge-agreement", rubric, max_tokens)
    t0 = time.perf_counter()
    verdicts, report = judge_samples(spec, client, [conversation(q, a, t) for _, q, a, t in jobs],
                                     [a[t - 1] for _, _, a, t in jobs], reasks, desc="judging for agreement")
    seconds = time.perf_counter() - t0
    if cfg.dry_run:
        print_usage(client.meter, title=f"dry run: {len(jobs)} judgments, estimate (nothing sent)")
        return {}, 0
    ratings = {key: rating(v) for (key, _, _, _), v in zip(jobs, verdicts, strict=True)}
    rationale = {key: v.calls[0].answer if v.calls else None for (key, _, _, _), v in zip(jobs, verdicts, strict=True)}
    attach(ref.items, ratings.get if ref.kind == "scores" else pairs_from_ratings(ratings))
    if ref.kind == "scores":
        for it in ref.items:
            it.rationale = rationale.get(it.key)
    print_usage(client.meter)
    failed = sum(1 for v in verdicts if any(c.details.get("error") for c in v.calls))
    return {"source": "rejudged", "model": client.model, "backend": cfg.backend, "protocol":
            "FastChat single-answer grading (lr_eval.tasks.mtbench)", "max_tokens": max_tokens or JUDGE_MAX_TOKENS,
            "structured": client.structured, "ratings": len(jobs), "failed_calls": failed,
            "tampered": sum(1 for v in verdicts if v.status == TAMPERED),
            "seconds": round(seconds, 1), "cost_usd": report.cost_usd, "usage": report.usage,
            "report": report.to_dict()}, failed


def rating(v: Verdict) -> KeyVerdict:
    """The judge's rating in a verdict record: only a scored verdict is the judge's; a tampered one (the scale's
    minimum, forced) and an unscored one are left out of the figures with their reason, counted."""
    if v.status == SCORED:
        return KeyVerdict(v.value)
    if v.status == TAMPERED:
        return KeyVerdict(None, tampered_reason(v.reason))
    return KeyVerdict(None, v.reason or "unscored")


def summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The one-line summary (an :class:`lr_eval.stats.AgreementSummary`) of a report."""
    judge = report.get("judge") or {}
    ref = report.get("reference") or {}
    figs = {k: report["overall"][k] for k in HEADLINE[report["kind"]] if k in report["overall"]}
    return stats.AgreementSummary(judge=str(judge.get("model") or "unknown"),
                                  reference=", ".join(ref.get("judges") or []) or str(ref.get("file")),
                                  kind=report["kind"], compared=int(report["compared"]),
                                  left_out=int(report["left_out"]),
                                  figures={k: stats.Estimate.from_dict(v) for k, v in figs.items()},
                                  cost_usd=judge.get("cost_usd")).to_dict()


# ------------------------------------------------------------------------------------------------ the page


_FIG_NAMES = {"agreement": "agreement (ties incl.)", "agreement_without_ties": "agreement (no ties)",
              "accuracy": "accuracy", "judge_ties": "judge ties", "reference_ties": "reference ties",
              "pearson": "Pearson", "spearman": "Spearman", "kendall": "Kendall", "mean_abs_diff": "mean |diff|",
              "exact": "exact", "within_1": "within 1", "mean_diff": "judge - ref"}


def _fmt(e: Mapping[str, Any] | None, ci: bool = True) -> str:
    if not e or e.get("value") is None:
        return "—"
    text = f"{e['value']:.3f}"
    if ci and e.get("ci"):
        text += f" [{e['ci'][0]:.3f}, {e['ci'][1]:.3f}]"
    return text


def _table(rows: Sequence[Mapping[str, Any]], figs: Sequence[str], first: str) -> list[str]:
    head = f"| {first} | n | " + " | ".join(_FIG_NAMES.get(f, f) for f in figs) + " |"
    out = [head, "|---|--:|" + "--:|" * len(figs)]
    for r in rows:
        n = max((r[f]["n"] for f in figs if r.get(f)), default=0)
        out.append(f"| {r['group']} | {n} | " + " | ".join(_fmt(r.get(f)) for f in figs) + " |")
    return out


def markdown_tables(report: Mapping[str, Any]) -> str:
    """The report's tables in Markdown (the page's body, and what the command prints)."""
    kind = report["kind"]
    figs = list(report["overall"])
    main = [f for f in figs if f not in ("judge_ties", "reference_ties", "mean_diff")]
    j, ref = report.get("judge") or {}, report.get("reference") or {}
    lines = [f"Judge: **{j.get('model') or 'unknown'}** ({j.get('source', '')}); reference: "
             f"{', '.join(ref.get('judges') or []) or '—'} ({ref.get('format')}, {ref.get('file')}).", "",
             f"{report['compared']} {kind} compared; {report['left_out']} left out"
             + (": " + "; ".join(f"{k} ({v})" for k, v in sorted(report["left_out_reasons"].items()))
                if report["left_out_reasons"] else "") + ".", "",
             "Intervals: 95% percentile bootstrap over items "
             f"({report['bootstrap']['iters']} resamples, seed {report['bootstrap']['seed']}).", "",
             "## Overall", ""]
    lines += _table([{"group": "all", **report["overall"]}], figs, "")
    lines += ["", f"## By length of the judged text ({report['length_unit']})", ""]
    lines += _table(report["by_length"], main, "length")
    lines += ["", "## By category", ""] + _table(report["by_category"], main, "category")
    if report.get("by_turn"):
        lines += ["", "## By turn", ""] + _table(report["by_turn"], main, "turn")
    lb = report["length_bias"]
    lines += ["", "## Biases", "", "| | judge | reference | judge − reference |", "|---|--:|--:|--:|"]
    what = "Spearman(rating, length)" if kind == "scores" else "picks the longer answer"
    lines.append(f"| length bias: {what} | {_fmt(lb['judge'])} | {_fmt(lb['reference'])} | {_fmt(lb['bias'])} |")
    sp = report["self_preference"]
    if kind == "pairs":
        lines.append(f"| self-preference: picks its own model's answer | {_fmt(sp['judge'])} | "
                     f"{_fmt(sp['reference'])} | {_fmt(sp['bias'])} |")
    pc = report["position_consistency"]
    lines.append(f"| position consistency (both orders agree) | {_fmt(pc.get('judge'))} | "
                 f"{_fmt(pc.get('reference'))} | |")
    notes = [n for n in (sp.get("note"), pc.get("note")) if n]
    if kind == "scores":
        notes.insert(0, f"self-preference: judge − reference on its own model's answers {_fmt(sp['own'])}, on the "
                        f"others {_fmt(sp['other'])}, difference {_fmt(sp['bias'])}")
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    if j.get("source") == "rejudged":
        usage = j.get("usage") or {}
        cached = f" ({usage['cache_hits']} from the judge cache)" if usage.get("cache_hits") else ""
        lines += ["", "## Cost", "", f"{j.get('ratings')} judge ratings{cached} in {j.get('seconds')} s "
                  f"({j.get('backend')}, answers capped at {j.get('max_tokens')} tokens, constrained decoding: "
                  f"{j.get('structured') or 'off'}); cost "
                  + ("unknown (no price)" if j.get("cost_usd") is None else f"${j['cost_usd']:.4f}")
                  + f"; usage {json.dumps(usage, ensure_ascii=False)}."]
    return "\n".join(lines) + "\n"


def _page_kind(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in (".md", ".html", ".htm"):
        raise ValueError(f"{path}: the page is Markdown (.md) or HTML (.html)")
    return "html" if suffix in (".html", ".htm") else "md"


def plot_by_length(report: Mapping[str, Any], path: Path) -> Path | None:
    """PNG of the headline figures by length bucket with their intervals; None without buckets or matplotlib."""
    rows = report["by_length"]
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figs = [f for f in HEADLINE[report["kind"]] + (("accuracy",) if report["kind"] == "pairs" else ("within_1",))
            if f in rows[0]]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    xs = list(range(len(rows)))
    for k, f in enumerate(figs):
        ys = [r[f]["value"] if r[f]["value"] is not None else float("nan") for r in rows]
        lo = [y - r[f]["ci"][0] if r[f].get("ci") else 0 for y, r in zip(ys, rows, strict=True)]
        hi = [r[f]["ci"][1] - y if r[f].get("ci") else 0 for y, r in zip(ys, rows, strict=True)]
        ax.errorbar([x + 0.08 * (k - (len(figs) - 1) / 2) for x in xs], ys, yerr=[lo, hi], marker="o", capsize=3,
                    label=_FIG_NAMES.get(f, f))
    ax.set_xticks(xs, [f"{r['group']}\n(n={max(r[f]['n'] for f in figs)})" for r in rows])
    ax.set_xlabel(f"length of the judged text ({report['length_unit']})")
    ax.set_ylabel("agreement with the reference")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.legend(fontsize=8)
    ax.set_title(f"{(report.get('judge') or {}).get('model') or 'judge'} vs the reference, by length", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_page(report: Mapping[str, Any], path: Path) -> None:
    """The report as one Markdown page (with the plot as a PNG next to it) or one self-contained HTML page."""
    kind = _page_kind(path)
    png = plot_by_length(report, path.with_suffix(".length.png"))
    title = f"Judge agreement: {(report.get('judge') or {}).get('model') or 'judge'}"
    body = markdown_tables(report)
    if kind == "md":
        plot = f"\n![figures by length bucket]({png.name})\n" if png else "\n(no plot: matplotlib missing)\n"
        write_text_atomic(path, f"# {title}\n\n{body}{plot}")
        return
    import base64
    import html

    img = (f'<img alt="figures by length bucket" src="data:image/png;base64,'
           f'{base64.b64encode(png.read_bytes()).decode()}">') if png else "<p>(no plot: matplotlib missing)</p>"
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:left}</style>",
             f"<h1>{html.escape(title)}</h1>"]
    in_table = False
    for line in body.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-: "):
                continue
            if not in_table:
                parts.append("<table>")
                in_table = True
                parts.append("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells) + "</tr>")
                continue
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            parts.append("</table>")
            in_table = False
        if line.startswith("## "):
            parts.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.strip():
            parts.append(f"<p>{html.escape(line.replace('**', ''))}</p>")
    if in_table:
        parts.append("</table>")
    parts.append(img)
    write_text_atomic(path, "\n".join(parts) + "\n")


def run_report(args: argparse.Namespace) -> int:
    check_paths({"page (-o)": args.output}, {"report": args.report})
    _page_kind(args.output)
    write_page(stats.read_agreement_report(args.report), Path(args.output))
    console.print(f"wrote {args.output}", markup=False)
    return 0
