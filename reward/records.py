"""The LongReward score record: what ``lr-eval score`` and ``lr-train score`` write per response, and what
``lr-train pairs``, the lm-eval metric and the leaderboard read. Defined once, checked on reading.

One output line is ``{"id", "results": [one score record per response]}`` (``lr-train score`` adds
``responses_sha`` and ``judge``, ``lr-eval score`` writes ``{"id", "line", "error"}`` for a line it could
not score); :func:`score_results` reads the results of such a line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lr_eval.records import FieldError, check_version, number, table

#: The four LongReward dimensions, in the order of the weights.
DIMENSIONS = ("helpfulness", "logicality", "faithfulness", "completeness")
#: The numbers of a score record: the dimensions and their weighted mean.
SCORE_KEYS = (*DIMENSIONS, "reward")
SCORE_VERSION = 2  # 2: `tampered`
SCALE = (0.0, 10.0)


@dataclass
class ResponseScore:
    """The LongReward verdict on one response, with everything needed to audit it.

    A dimension is a float in [0, 10] or None; every enabled dimension that is
    None has its reason in `unscored` (the judge's doing). A dimension whose verdict
    the evaluated text could have supplied is *tampered*: it scores 0 (the scale's
    minimum), is averaged, and has its reason in `tampered`. `reward` is the weighted
    mean of the dimensions listed in `averaged` (None when that list is empty).
    """

    helpfulness: float | None = None
    logicality: float | None = None
    faithfulness: float | None = None
    completeness: float | None = None
    reward: float | None = None
    averaged: list[str] = field(default_factory=list)
    unscored: dict[str, str] = field(default_factory=dict)
    tampered: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)

    def scores(self) -> dict[str, float | None]:
        return {d: getattr(self, d) for d in DIMENSIONS}

    @property
    def status(self) -> str:
        """The response's verdict: tampered when any dimension is, unscored without a reward, else scored."""
        return "tampered" if self.tampered else "unscored" if self.reward is None else "scored"

    def partial(self, enabled: Sequence[str] = DIMENSIONS) -> bool:
        """Whether the reward averages fewer than the `enabled` dimensions (some were unscored)."""
        return self.reward is not None and set(self.averaged) != set(enabled)

    def to_dict(self) -> dict[str, Any]:
        return {**self.scores(), "reward": self.reward, "averaged": list(self.averaged),
                "unscored": dict(self.unscored), "tampered": dict(self.tampered), "flags": list(self.flags),
                "audit": self.audit, "usage": self.usage, "version": SCORE_VERSION}

    @staticmethod
    def from_dict(d: Mapping[str, Any], prefix: str = "") -> ResponseScore:
        """Read one score record; FieldError (``prefix`` + field) for a value of the wrong kind or range.

        Only the numbers are required to be present or null; records written before the version field
        (and short ones, as tests and other tools write) read with empty lists and tables.
        """
        if not isinstance(d, Mapping):
            raise FieldError(prefix.rstrip(".") or "result", f"expected a score object, got {type(d).__name__}")
        try:
            check_version(d, SCORE_VERSION, "score record")
        except FieldError as e:
            raise FieldError(prefix + e.field, e.problem) from None
        values: dict[str, float | None] = {}
        for key in SCORE_KEYS:
            value = number(d, key, optional=True, prefix=prefix)
            if value is not None and not SCALE[0] <= value <= SCALE[1]:
                raise FieldError(prefix + key, f"expected a score from 0 to 10, got {value}")
            values[key] = value
        averaged = _strings(d, "averaged", prefix)
        bad = [x for x in averaged if x not in DIMENSIONS]
        if bad:
            raise FieldError(prefix + "averaged", f"not a dimension: {bad[0]!r} (dimensions: {', '.join(DIMENSIONS)})")
        reasons: dict[str, dict[str, str]] = {}
        for key in ("unscored", "tampered"):
            reasons[key] = table(d, key, prefix)
            if not all(isinstance(v, str) for v in reasons[key].values()):
                raise FieldError(prefix + key, "expected dimension -> reason (text)")
        return ResponseScore(helpfulness=values["helpfulness"], logicality=values["logicality"],
                             faithfulness=values["faithfulness"], completeness=values["completeness"],
                             reward=values["reward"], averaged=averaged, unscored=reasons["unscored"],
                             tampered=reasons["tampered"], flags=_strings(d, "flags", prefix),
                             audit=table(d, "audit", prefix), usage=table(d, "usage", prefix))


def _strings(d: Mapping[str, Any], key: str, prefix: str) -> list[str]:
    value = d.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise FieldError(prefix + key, "expected a list of strings")
    return list(value)


def score_results(line: Mapping[str, Any]) -> list[ResponseScore] | None:
    """The score records of one output line; None for a line that carries none (an ``error`` line, no
    ``results``). FieldError names the first bad field (``results[2].reward``)."""
    if "error" in line or line.get("results") is None:
        return None
    results = line["results"]
    if not isinstance(results, list):
        raise FieldError("results", f"expected a list of score objects, got {type(results).__name__}")
    return [ResponseScore.from_dict(r, f"results[{i}].") for i, r in enumerate(results)]
