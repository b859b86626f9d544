"""Plain data types shared by every judge backend, the cache and the callers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:
    from .formats import AnswerFormat

# Bumped when the meaning of a cached answer changes (key fields, stored format).
CACHE_SCHEMA = 1


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to ask a judge.

    `template_id`/`template_version` name the prompt template that produced the
    messages; they enter the cache key so that a prompt change never reuses a
    stale answer even when two versions happen to render the same text.
    """

    messages: tuple[dict[str, str], ...]
    temperature: float = 0.0
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    template_id: str = ""
    template_version: str = ""
    #: The untrusted texts inside the messages, as they appear there (see lr_eval.trust). Not part of the
    #: cache key or of what is sent: the parser uses them to keep the verdict to the judge's own words.
    untrusted: tuple[str, ...] = field(default=(), compare=False)
    #: The texts under evaluation (the model's answers) as written, before any fence, and the template's own
    #: part delimiters: whose a verdict is, and whether the text broke the prompt's fences (lr_eval.trust).
    evaluated: tuple[str, ...] = field(default=(), compare=False)
    separators: tuple[str, ...] = field(default=(), compare=False)
    #: The template's answer format (an `lr_eval.formats.AnswerFormat`): every template declares one. It only
    #: changes what is sent when `structured` names the form a backend enforces it in ("llguidance",
    #: "structured_outputs", "guided_regex", "regex", "json_schema"); JudgeClient.complete() sets that.
    answer_format: AnswerFormat | None = field(default=None, compare=False)
    structured: str | None = None
    #: "text" (the verdict as written) or "logprobs" (probability-weighted over the valid ratings of a rating
    #: format); None: the client's setting.
    score_from: str | None = None

    @staticmethod
    def of(messages: list[dict[str, str]], **kw: Any) -> ChatRequest:
        """Build from a list of messages (converted to a hashable tuple)."""
        msgs = tuple({"role": str(m["role"]), "content": str(m["content"])} for m in messages)
        if kw.get("stop") is not None:
            kw["stop"] = tuple(kw["stop"])
        for key in ("untrusted", "evaluated", "separators"):
            if kw.get(key) is not None:
                kw[key] = tuple(str(t) for t in kw[key])
        return ChatRequest(messages=msgs, **kw)

    def decoding(self) -> dict[str, Any]:
        """The decoding parameters, without None values."""
        d = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "stop": list(self.stop) if self.stop else None,
            "seed": self.seed,
            "logprobs": self.logprobs or None,
            "top_logprobs": self.top_logprobs,
        }
        return {k: v for k, v in d.items() if v is not None}

    def constraints(self) -> dict[str, Any]:
        """What the structured mode and the score mode add to the request (empty in the default text mode)."""
        out: dict[str, Any] = {}
        if self.structured and self.answer_format is not None:
            out["structured"] = [self.structured, self.answer_format.key(self.structured, self.max_tokens or 0)]
        if self.score_from not in (None, "text"):
            out["score_from"] = self.score_from
        return out

    def prompt_texts(self) -> list[str]:
        """What the judge was shown, less its own earlier answers (re-asks): where a copied verdict comes from."""
        return [m["content"] for m in self.messages if m["role"] != "assistant"]

    def cache_key(self, model: str) -> str:
        """Content address: model, messages, decoding and template identity."""
        payload = {
            "schema": CACHE_SCHEMA,
            "model": model,
            "messages": list(self.messages),
            "decoding": self.decoding(),
            "template": [self.template_id, self.template_version],
        }
        constraints = self.constraints()
        if constraints:  # absent in the default mode, so the keys of unconstrained text-mode caches stay as they were
            payload["constraints"] = constraints
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class Usage:
    """Token counts reported by the endpoint (or counted locally in-process)."""

    input_tokens: int = 0
    output_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class ChatResult:
    """The answer to one request, or why there is none.

    `error_kind` is one of: "bad_request" (permanent, e.g. context too long),
    "retries_exhausted", "budget", "dry_run", "fatal"; None on success.
    `top_logprobs` holds, per generated token, a {token: logprob} dict.
    """

    content: str | None
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
    finish_reason: str | None = None
    top_logprobs: list[dict[str, float]] | None = None
    #: {rating: log-probability} at the verdict position, when the request asked for score_from="logprobs".
    verdict_logprobs: dict[str, float] | None = None
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and self.content is not None

    def to_cache(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "usage": self.usage.to_dict(),
            "finish_reason": self.finish_reason,
            "top_logprobs": self.top_logprobs,
            **({"verdict_logprobs": self.verdict_logprobs} if self.verdict_logprobs is not None else {}),
        }

    @staticmethod
    def from_cache(d: dict[str, Any]) -> ChatResult:
        return ChatResult(
            content=d["content"],
            usage=Usage(**d.get("usage", {})),
            cached=True,
            finish_reason=d.get("finish_reason"),
            top_logprobs=d.get("top_logprobs"),
            verdict_logprobs=d.get("verdict_logprobs"),
        )


class JudgeStop(UserError, RuntimeError):
    """Stops every request of the run: printed as one line by every command, with exit code 3."""

    exit_code = 3


class JudgeFatalError(JudgeStop):
    """An error no retry can fix and that affects every request (bad key, unknown model, no such host)."""


class BudgetExceeded(JudgeStop):
    """The next request could pass --max-cost or --max-requests, or the server billed more than is possible.

    With the meter attached, the message is composed when it is shown, after the requests already in flight
    have finished: what was spent, the budget, and how many requests were not sent.
    """

    def __init__(self, reason: str, meter: Any = None):
        super().__init__(reason)
        self.reason = reason
        self.meter = meter

    def __str__(self) -> str:
        if self.meter is None:
            return self.reason
        return f"judge budget stop: {self.reason}; {self.meter.budget_line()}"


class TransientError(Exception):
    """A failure worth retrying (429, 5xx, timeout, connection, malformed body)."""

    def __init__(self, message: str, retry_after: float | None = None, refused: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.refused = refused  # the connection was refused: fatal once no answer can be expected


class PermanentError(Exception):
    """A failure of this one request that a retry would repeat (400, 422)."""
