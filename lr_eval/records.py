"""Records that cross part boundaries: checked field by field, with a version, defined once.

A record's ``from_dict`` raises :class:`FieldError` naming the field; a reader that knows the file and
line turns it into an :class:`~lr_eval.jsonl.InputError` with :meth:`FieldError.at`. The judge report is
here (tasks write it into ``configs.<task>.metadata.judge``, the leaderboard reads it); the LongReward
score record and settings are in ``lr_eval.reward``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError


class FieldError(UserError, ValueError):
    """A record or setting with a bad field; `field` names it (dotted for nested fields)."""

    def __init__(self, field: str, problem: str, where: str = ""):
        super().__init__(f"{where + ': ' if where else ''}field '{field}': {problem}")
        self.field, self.problem, self.where = field, problem, where

    def at(self, path: str | Path, line: int) -> Exception:
        """The same problem as an InputError of one line of a file."""
        from .jsonl import InputError

        return InputError(path, line, self.field, self.problem)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def number(d: Mapping[str, Any], key: str, optional: bool = False, prefix: str = "") -> float | None:
    """A finite int or float (not a bool); None allowed when `optional`."""
    value = d.get(key)
    if value is None:
        if optional:
            return None
        raise FieldError(prefix + key, "missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(prefix + key, f"expected a number, got {_kind(value)}")
    if not math.isfinite(value):
        raise FieldError(prefix + key, f"expected a finite number, got {value}")
    return float(value)


def count(d: Mapping[str, Any], key: str, optional: bool = False, prefix: str = "") -> int | None:
    """A non-negative int (not a bool)."""
    value = d.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FieldError(prefix + key, "missing" if value is None else f"expected a count, got {value!r}")
    return value


def text(d: Mapping[str, Any], key: str, optional: bool = False, prefix: str = "") -> str | None:
    value = d.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise FieldError(prefix + key, "missing" if value is None else f"expected a string, got {_kind(value)}")
    return value


def table(d: Mapping[str, Any], key: str, prefix: str = "") -> dict[str, Any]:
    """A JSON object (absent: empty)."""
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError(prefix + key, f"expected an object, got {_kind(value)}")
    return dict(value)


def check_version(d: Mapping[str, Any], current: int, what: str) -> int:
    """The record's ``version`` (absent: the first layout, 1); one newer than this code reads is refused."""
    version = count(d, "version", optional=True)
    if version is None:
        return 1
    if version < 1 or version > current:
        raise FieldError("version", f"{what} version {version} is not one this lr_eval reads (1 to {current}); "
                                    "upgrade longreward-eval")
    return version


# ------------------------------------------------------------------------------------------ judge report

JUDGE_REPORT_VERSION = 1
_REPORT_CORE = ("version", "model", "judge", "template_id", "template_version", "samples", "usage", "cost_usd")


@dataclass
class JudgeReport:
    """What a judged task reports about its judge: who judged, with which template, counts, usage, cost.

    ``samples`` holds ``judged`` (items sent to the judge) and ``unscored`` (a count, or per dimension
    for LongReward, which also counts ``rewarded``), plus ``scored``, ``unscored_reasons`` and any
    family-specific counts. ``details`` holds the rest of what a family reports (rating scale,
    decoding, per-stage call statistics...); they are written at the top level, beside the core keys.
    """

    model: str
    samples: dict[str, Any]
    usage: dict[str, Any] = field(default_factory=dict)
    judge: str | None = None            # the judge configuration in words: "<model> via <backend> at <where>"
    template_id: str | None = None      # the one prompt template of a single-template family
    template_version: str | None = None
    cost_usd: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    version: int = JUDGE_REPORT_VERSION

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Validate the fields (from_dict and the constructor both run this)."""
        if not isinstance(self.model, str) or not self.model:
            raise FieldError("model", f"expected the judge model's name, got {self.model!r}")
        count(self.samples, "judged", prefix="samples.")
        count(self.samples, "scored", optional=True, prefix="samples.")
        count(self.samples, "rewarded", optional=True, prefix="samples.")
        unscored = self.samples.get("unscored")
        if isinstance(unscored, Mapping):
            for dim in unscored:
                count(unscored, dim, prefix="samples.unscored.")
        else:
            count(self.samples, "unscored", prefix="samples.")
        number({"cost_usd": self.cost_usd}, "cost_usd", optional=True)
        clash = set(self.details) & set(_REPORT_CORE)
        if clash:
            raise FieldError(sorted(clash)[0], "a detail may not reuse a core key of the judge report")

    @property
    def unscored_items(self) -> int:
        """Items without a score: the count, or for LongReward the items without a reward."""
        unscored = self.samples["unscored"]
        if not isinstance(unscored, Mapping):
            return int(unscored)
        if self.samples.get("rewarded") is not None:
            return int(self.samples["judged"]) - int(self.samples["rewarded"])
        return max(unscored.values(), default=0)

    @property
    def templates(self) -> dict[str, str]:
        """Template id -> version (empty for a family that reports its templates per sample)."""
        return {self.template_id: self.template_version or ""} if self.template_id else {}

    def total_cost(self) -> float | None:
        """The report's cost, else the usage meter's."""
        if self.cost_usd is not None:
            return self.cost_usd
        return number(self.usage, "cost_usd", optional=True, prefix="usage.")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version, "model": self.model}
        for key in ("judge", "template_id", "template_version"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(self.details)
        out["samples"], out["usage"], out["cost_usd"] = self.samples, self.usage, self.cost_usd
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JudgeReport:
        """Read a report (one written before reports had a version reads as version 1)."""
        if not isinstance(d, Mapping):
            raise FieldError("judge", f"expected the judge report object, got {_kind(d)}")
        version = check_version(d, JUDGE_REPORT_VERSION, "judge report")
        samples = table(d, "samples")
        if not samples:
            raise FieldError("samples", "missing")
        # the ignore below: model is str | None to mypy; text() without optional=True never returns None
        return cls(model=text(d, "model"), samples=samples, usage=table(d, "usage"),  # type: ignore[arg-type]
                   judge=text(d, "judge", optional=True), template_id=text(d, "template_id", optional=True),
                   template_version=None if d.get("template_version") is None else str(d["template_version"]),
                   cost_usd=number(d, "cost_usd", optional=True),
                   details={k: v for k, v in d.items() if k not in _REPORT_CORE}, version=version)
