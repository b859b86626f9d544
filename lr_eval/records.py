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

#: scored: the judge's own verdict. tampered: a verdict the evaluated text could have supplied (or a judge answer
#: that only copies it, or a prompt whose fences it broke): scored as the scale's minimum. unscored: no verdict
#: (out of format, refusal, error, budget): left out of the mean, counted.
SCORED, TAMPERED, UNSCORED = "scored", "tampered", "unscored"
STATUSES = (SCORED, TAMPERED, UNSCORED)
#: Whose doing a tampered or unscored verdict is.
JUDGE_CAUSE, TEXT_CAUSE = "judge", "evaluated_text"
CAUSES = (JUDGE_CAUSE, TEXT_CAUSE)


JUDGE_REPORT_VERSION = 1
_REPORT_CORE = ("version", "model", "judge", "template_id", "template_version", "samples", "usage", "cost_usd")


@dataclass
class JudgeReport:
    """What a judged task reports about its judge: who judged, with which template, counts, usage, cost.

    ``samples`` holds ``judged`` (items sent to the judge), ``scored`` (the judge's own verdicts),
    ``tampered`` (verdicts the evaluated text could have supplied, scored as the scale's minimum),
    ``unscored`` (judge-caused, left out of the mean), each a count or, for LongReward, per dimension (which
    also counts ``rewarded``), ``unscored_reasons`` and ``causes`` ({"judge": n, "evaluated_text": n}), plus
    any family-specific counts. ``details`` holds the rest of what a family reports (rating scale,
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
        for key in ("unscored", "tampered"):
            value = self.samples.get(key)
            if isinstance(value, Mapping):
                for dim in value:
                    count(value, dim, prefix=f"samples.{key}.")
            else:
                count(self.samples, key, optional=key == "tampered", prefix="samples.")
        causes = table(self.samples, "causes", prefix="samples.")
        for cause in causes:
            if cause not in CAUSES:
                raise FieldError(f"samples.causes.{cause}", f"expected a cause ({', '.join(CAUSES)})")
            count(causes, cause, prefix="samples.causes.")
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
    def tampered_items(self) -> int:
        """Items scored as the scale's minimum because the evaluated text could have supplied the verdict."""
        tampered = self.samples.get("tampered") or 0
        return max(tampered.values(), default=0) if isinstance(tampered, Mapping) else int(tampered)

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


# ------------------------------------------------------------------------------------------ the verdict

VERDICT_VERSION = 2


def _status(d: Mapping[str, Any], prefix: str) -> tuple[str, str | None]:
    status = text(d, "status", prefix=prefix)
    if status not in STATUSES:
        raise FieldError(prefix + "status", f"expected one of {', '.join(STATUSES)}, got {status!r}")
    cause = text(d, "cause", optional=True, prefix=prefix)
    if cause is not None and cause not in CAUSES:
        raise FieldError(prefix + "cause", f"expected one of {', '.join(CAUSES)}, got {cause!r}")
    if status != SCORED and cause is None:
        raise FieldError(prefix + "cause", f"missing (a {status} verdict says whose doing it is)")
    return status, cause


def cause_of(status: str) -> str | None:
    """The cause a status implies when nothing more is known (tampered: the text; unscored: the judge)."""
    return None if status == SCORED else TEXT_CAUSE if status == TAMPERED else JUDGE_CAUSE


@dataclass
class JudgeCall:
    """One judge call behind a verdict: which template, what the judge answered, what was read from it."""

    status: str
    value: float | None = None          # as parsed (tampered: the scale's minimum)
    cause: str | None = None
    reason: str | None = None
    template_id: str | None = None
    template_version: str | None = None
    answer: str | None = None           # the judge's (first) answer
    usage: dict[str, Any] = field(default_factory=dict)   # calls, input_tokens, output_tokens, cached
    cost_usd: float | None = None
    details: dict[str, Any] = field(default_factory=dict)  # family-specific: reference, turn, prompt, re-ask...

    _CORE = ("status", "value", "cause", "reason", "template_id", "template_version", "answer", "usage", "cost_usd")

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self._CORE}
        out.update(self.details)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], prefix: str = "") -> JudgeCall:
        if not isinstance(d, Mapping):
            raise FieldError(prefix.rstrip(".") or "call", f"expected a judge call object, got {_kind(d)}")
        status, cause = _status(d, prefix)
        return cls(status=status, value=number(d, "value", optional=True, prefix=prefix), cause=cause,
                   reason=text(d, "reason", optional=True, prefix=prefix),
                   template_id=text(d, "template_id", optional=True, prefix=prefix),
                   template_version=text(d, "template_version", optional=True, prefix=prefix),
                   answer=text(d, "answer", optional=True, prefix=prefix), usage=table(d, "usage", prefix),
                   cost_usd=number(d, "cost_usd", optional=True, prefix=prefix),
                   details={k: v for k, v in d.items() if k not in cls._CORE})


@dataclass
class Verdict:
    """The per-sample verdict of every judged family: what the sample scored, whether that is the judge's own
    verdict, and if not whose doing it is and why; the judge calls behind it.

    ``value`` is on ``scale`` (the task's per-sample scale: 0-100, 1-10, a preference 1-2, a reward 0-10); a
    tampered verdict holds the scale's minimum, an unscored one None. ``details`` holds what a family adds
    (AlpacaEval's order and LC inputs, LongReward's score record); they are written beside the core keys.
    """

    status: str
    scale: tuple[float, float]
    value: float | None = None
    cause: str | None = None
    reason: str | None = None
    response: str = ""
    calls: list[JudgeCall] = field(default_factory=list)
    judge: dict[str, Any] = field(default_factory=dict)    # model, template
    cost_usd: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    version: int = VERDICT_VERSION

    _CORE = ("version", "status", "value", "cause", "reason", "scale", "response", "calls", "judge", "cost_usd")

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise FieldError("status", f"expected one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.status != SCORED and self.cause is None:
            self.cause = cause_of(self.status)
        if self.status == TAMPERED and self.value is None:
            self.value = float(self.scale[0])
        if (self.value is None) != (self.status == UNSCORED):
            raise FieldError("value", f"a {self.status} verdict {'has no' if self.status == UNSCORED else 'needs a'} "
                                      "value")
        clash = set(self.details) & set(self._CORE)
        if clash:
            raise FieldError(sorted(clash)[0], "a detail may not reuse a core key of the verdict")

    @property
    def counted(self) -> bool:
        """Whether the value enters the task's mean (scored or tampered)."""
        return self.value is not None

    def pessimistic(self) -> float:
        """The value with an unscored verdict counted as the scale's minimum (the pessimistic bound)."""
        return float(self.scale[0]) if self.value is None else float(self.value)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version, "response": self.response, "status": self.status,
                               "value": self.value, "cause": self.cause, "reason": self.reason,
                               "scale": list(self.scale), "calls": [c.to_dict() for c in self.calls],
                               "judge": self.judge, "cost_usd": self.cost_usd}
        out.update(self.details)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        """Read a verdict; FieldError names the bad field. A samples log written before verdicts had a version
        (``score``/``preference`` and ``unscored``, ``judgements``) reads as version 1."""
        if not isinstance(d, Mapping):
            raise FieldError("verdict", f"expected the verdict object, got {_kind(d)}")
        version = check_version(d, VERDICT_VERSION, "verdict")
        if version == 1:
            return cls._from_v1(d)
        status, cause = _status(d, "")
        scale = d.get("scale")
        if not (isinstance(scale, list) and len(scale) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in scale)):
            raise FieldError("scale", f"expected [lowest, highest], got {scale!r}")
        calls = d.get("calls") or []
        if not isinstance(calls, list):
            raise FieldError("calls", f"expected a list of judge calls, got {_kind(calls)}")
        return cls(status=status, scale=(float(scale[0]), float(scale[1])),
                   value=number(d, "value", optional=True), cause=cause, reason=text(d, "reason", optional=True),
                   response=text(d, "response", optional=True) or "",
                   calls=[JudgeCall.from_dict(c, f"calls[{i}].") for i, c in enumerate(calls)],
                   judge=table(d, "judge"), cost_usd=number(d, "cost_usd", optional=True),
                   details={k: v for k, v in d.items() if k not in cls._CORE}, version=version)

    @classmethod
    def _from_v1(cls, d: Mapping[str, Any]) -> Verdict:
        key = next((k for k in ("score", "preference", "reward") if k in d), None)
        if key is None:
            raise FieldError("score", "missing (neither a verdict nor a version-1 verdict)")
        value = number(d, key, optional=True)
        reason = d.get("unscored") if isinstance(d.get("unscored"), str) else None
        rest = {k: v for k, v in d.items() if k not in (*cls._CORE, key) and not (k == "unscored" and reason)}
        if key == "reward":
            rest[key] = d[key]  # LongReward: the score record is the details
        scale = {"preference": (1.0, 2.0), "reward": (0.0, 10.0)}.get(key, (0.0, 100.0))
        return cls(status=SCORED if value is not None else UNSCORED, scale=scale, value=value,
                   reason=reason, response=text(d, "response", optional=True) or "", judge=table(d, "judge"),
                   cost_usd=number(d, "cost_usd", optional=True), details=rest, version=1)


def verdict_of(value: Any) -> Verdict | None:
    """The verdict of a filtered response (JSON text, as the filters return it, or a dict); None if it is none."""
    import json

    if isinstance(value, str):
        if not value.lstrip().startswith("{"):
            return None
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, Mapping):
        return None
    try:
        return Verdict.from_dict(value)
    except FieldError:
        return None
