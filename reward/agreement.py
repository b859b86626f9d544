"""Judge-human agreement: how often LongReward prefers the response a person preferred.

The paper's check (464 annotated long-context pairs): pairwise accuracy of
the full reward 0.662, and of the reward without one dimension (the ablation).
We report the full reward, each dimension alone and each leave-one-out
combination, with percentile bootstrap confidence intervals.

Counting rules: a pair the human marked as a tie is left out (and counted);
a pair where the scorer gives both responses the same value counts as half
right (a coin flip would get half); a pair where either response has no
value for a combination is left out of that combination and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lr_eval.jsonl import InputError, read_jsonl, require
from lr_eval.stats import bootstrap_ci

from .scorer import DIMENSIONS, ResponseScore, combine

# Pairwise accuracy published in the paper (Table: agreement with human preference, 464 pairs).
PAPER_ACCURACY = {"reward": 0.662, "without helpfulness": 0.631, "without logicality": 0.623,
                  "without faithfulness": 0.578, "without completeness": 0.578}


@dataclass
class Pair:
    """Two responses to one prompt and the one a person preferred (0 or 1)."""

    id: str
    context: str
    question: str
    responses: tuple[str, str]
    human: int


def combinations() -> list[tuple[str, tuple[str, ...]]]:
    """(name, dimensions) for the full reward, each dimension alone, and each leave-one-out."""
    out: list[tuple[str, tuple[str, ...]]] = [("reward", DIMENSIONS)]
    out += [(f"{d} only", (d,)) for d in DIMENSIONS]
    out += [(f"without {d}", tuple(x for x in DIMENSIONS if x != d)) for d in DIMENSIONS]
    return out


_CHOICE = {0: 0, 1: 1, "0": 0, "1": 1, "a": 0, "b": 1, "A": 0, "B": 1, "response_a": 0, "response_b": 1}


def parse_pair(rec: dict[str, Any], path: str | Path, line: int) -> Pair | None:
    """One PAIRS.jsonl line; None for a human tie. Accepted shapes:
    {context, question, responses: [a, b], human: 0|1|"a"|"b"|"tie"},
    {context, question, response_a, response_b, human}, or {context, question, chosen, rejected}.
    """
    rid = str(rec.get("id", f"line{line}"))
    context = require(rec, "context", str, path, line)
    question = require(rec, "question", str, path, line)
    if "chosen" in rec or "rejected" in rec:
        chosen = require(rec, "chosen", str, path, line)
        rejected = require(rec, "rejected", str, path, line)
        return Pair(rid, context, question, (chosen, rejected), 0)
    if "responses" in rec:
        responses = require(rec, "responses", list, path, line)
        if len(responses) != 2 or not all(isinstance(r, str) for r in responses):
            raise InputError(path, line, "responses", "expected a list of exactly two strings")
        pair = (responses[0], responses[1])
    else:
        pair = (require(rec, "response_a", str, path, line), require(rec, "response_b", str, path, line))
    if "human" not in rec:
        raise InputError(path, line, "human", "missing (0/1, \"a\"/\"b\" or \"tie\")")
    choice = rec["human"]
    if choice is None or (isinstance(choice, str) and choice.strip().lower() in {"tie", "equal", "none"}):
        return None
    key = choice.strip() if isinstance(choice, str) else choice
    if isinstance(choice, (bool, list, dict)) or key not in _CHOICE:
        raise InputError(path, line, "human", f"expected 0/1, \"a\"/\"b\" or \"tie\", got {choice!r}")
    return Pair(rid, context, question, pair, _CHOICE[key])


def read_pairs(path: str | Path) -> tuple[list[Pair], list[InputError], int]:
    """(pairs, bad lines, number of human ties left out); a repeated id is a bad line (the first is kept)."""
    pairs: list[Pair] = []
    errors: list[InputError] = []
    ties = 0
    seen: set[str] = set()
    for n, rec in read_jsonl(path):
        if isinstance(rec, InputError):
            errors.append(rec)
            continue
        try:
            p = parse_pair(rec, path, n)
            if "id" in rec and str(rec["id"]) in seen:
                raise InputError(path, n, "id", f"duplicate id {rec['id']!r} (each pair may appear once)")
        except InputError as e:
            errors.append(e)
            continue
        if "id" in rec:
            seen.add(str(rec["id"]))
        if p is None:
            ties += 1
        else:
            pairs.append(p)
    return pairs, errors, ties


def outcome(a: float | None, b: float | None, human: int) -> float | None:
    """1 when the higher value is the human's choice, 0.5 on equal values, 0 otherwise, None if one is missing."""
    if a is None or b is None:
        return None
    if a == b:
        return 0.5
    return 1.0 if (0 if a > b else 1) == human else 0.0


@dataclass
class Row:
    name: str
    dims: tuple[str, ...]
    n: int
    excluded: int
    accuracy: float | None
    ci: tuple[float, float]
    paper: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dimensions": list(self.dims), "pairs": self.n, "excluded": self.excluded,
                "accuracy": self.accuracy, "ci95": list(self.ci), "paper": self.paper}


def agreement_table(scored: Sequence[tuple[ResponseScore, ResponseScore]], humans: Sequence[int],
                    weights: dict[str, float] | None = None, n_boot: int = 1000, seed: int = 0) -> list[Row]:
    """Pairwise accuracy of every combination in `combinations()` over the scored pairs."""
    rows = []
    for name, dims in combinations():
        outs = []
        for (a, b), h in zip(scored, humans, strict=True):
            va, _ = combine(a.scores(), weights, dims)
            vb, _ = combine(b.scores(), weights, dims)
            o = outcome(va, vb, h)
            if o is not None:
                outs.append(o)
        acc = float(np.mean(outs)) if outs else None
        rows.append(Row(name, dims, len(outs), len(scored) - len(outs), acc,
                        bootstrap_ci(outs, n_boot, seed), PAPER_ACCURACY.get(name)))
    return rows
