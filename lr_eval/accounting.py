"""Usage, cost and budget accounting for judge calls.

`--max-cost` is a hard ceiling, whatever the server reports. Before a request is sent, its worst case is
reserved: input tokens at most the UTF-8 bytes of its messages plus a per-message overhead (no tokenizer
makes more tokens than bytes), output at most its max_tokens (which the client always sets). A request
whose reservation does not fit next to what is spent waits while other requests are in flight (their
reservations are released as they settle) and is not sent when it cannot fit even with none in flight.
An answer settles its reservation with the usage the server reports, unless that usage is implausible:
missing or zero, or above the request's bound. Then the request is charged at its bound (said once), and
a report above the bound stops new sends at once; every answer received after it is charged at its bound.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .types import BudgetExceeded, Usage

# USD per million tokens (input, output), from the providers' public price
# pages as of 2025. Override or extend with --prices FILE (JSON of the same shape).
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4-1106-preview": (10.00, 30.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
}

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def estimate_tokens(text: str) -> int:
    """Rough token count without the judge's tokenizer: one per CJK character,
    one per four other characters (the usual rule of thumb for BPE vocabularies)."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


#: Tokens a chat format may add per message (role markers, separators) and once per request (reply priming).
MESSAGE_OVERHEAD_TOKENS = 16
REQUEST_OVERHEAD_TOKENS = 16


def max_input_tokens(messages: Sequence[dict[str, str]]) -> int:
    """An upper bound on a request's input tokens, whatever the tokenizer: each token covers at least a byte."""
    return REQUEST_OVERHEAD_TOKENS + sum(len(m["content"].encode("utf-8")) + MESSAGE_OVERHEAD_TOKENS
                                         for m in messages)


def load_prices(path: str | Path | None) -> dict[str, tuple[float, float]]:
    """The default table, updated with a JSON file {model: [input, output]} in USD per 1M tokens."""
    from .jsonl import InputError, read_json

    prices = dict(DEFAULT_PRICES)
    if path:
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise InputError(path, None, None, "expected a JSON object {model: [input_usd_per_1M, output_usd_per_1M]}")
        for model, pair in raw.items():
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0
                            for x in pair)):
                raise InputError(path, None, model, "expected [input_usd_per_1M, output_usd_per_1M], two "
                                                    "non-negative numbers")
            prices[model] = (float(pair[0]), float(pair[1]))
    return prices


@dataclass
class UsageMeter:
    """Running totals for one client; what the progress bar and reports show."""

    model: str
    price: tuple[float, float] | None = None
    max_cost: float | None = None
    max_requests: int | None = None
    requests: int = 0          # HTTP attempts sent (retries included)
    paid: int = 0              # successful answers received from the endpoint
    cache_hits: int = 0
    failures: int = 0          # requests that ended without an answer
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    est_calls: int = 0         # dry-run: calls that would be sent
    est_input_tokens: int = 0
    est_output_tokens: int = 0
    not_sent: int = 0          # requests refused by the budget
    shared_waits: int = 0      # requests answered by another process that had claimed them
    off_format: int = 0        # server-constrained answers outside their format: the server ignored the field
    caching: bool = False      # answers are stored in a cache (set by the client): what a budget stop says
    charged_at_bound: int = 0  # answers whose reported usage was implausible, charged at their bound
    distrusted: bool = False   # the server reported more than possible: every later answer is charged at its bound
    started: float = field(default_factory=time.monotonic)
    _reserved: float = 0.0
    _in_flight: int = 0

    @property
    def cost(self) -> float | None:
        if self.price is None:
            return None
        return (self.input_tokens * self.price[0] + self.output_tokens * self.price[1]) / 1e6

    def estimated_cost(self) -> float | None:
        if self.price is None:
            return None
        return (self.est_input_tokens * self.price[0] + self.est_output_tokens * self.price[1]) / 1e6

    def _request_cost(self, input_tokens: int, output_tokens: int) -> float:
        assert self.price is not None
        return (input_tokens * self.price[0] + output_tokens * self.price[1]) / 1e6

    def reserve(self, input_bound: int, max_output: int) -> float | None:
        """Check the budget for one more request: its worst-case cost, now held and the request counted as
        sent; None when it fits only once requests in flight settle (wait for `release`). Raises
        BudgetExceeded when it cannot fit at all."""
        if self.max_requests is not None and self.requests >= self.max_requests:
            raise BudgetExceeded(f"--max-requests {self.max_requests} reached", self)
        hold = 0.0
        if self.max_cost is not None:
            if self.price is None:
                raise BudgetExceeded(
                    f"--max-cost is set but no price is known for model {self.model!r}; "
                    "give one with --prices FILE or --price-input/--price-output")
            hold = self._request_cost(input_bound, max_output)
            spent = self.cost or 0.0
            if spent + hold > self.max_cost:
                raise BudgetExceeded(f"the next request could cost up to {hold:.4f} USD, which does not fit in "
                                     "what is left", self)
            if self._in_flight and spent + self._reserved + hold > self.max_cost:
                return None
        self._reserved += hold
        self._in_flight += 1
        self.requests += 1
        return hold

    def release(self, hold: float) -> None:
        """The request holding `hold` ended (answered or not): its reservation is free again."""
        self._reserved = max(0.0, self._reserved - hold)
        self._in_flight -= 1

    def settle(self, usage: Usage, input_bound: int, max_output: int) -> tuple[str | None, BudgetExceeded | None]:
        """Count a received answer at the usage the server reported, or at the request's bound when that
        usage is implausible (missing, zero, negative, or above the bound; or the server already reported
        more than possible). Returns (a note to show once, or None; the stop a report above the bound
        causes in a budgeted run, or None). The answer itself is kept: it is paid for."""
        note: str | None = None
        stop: BudgetExceeded | None = None
        if not (self.price and any(self.price)):  # tokens cost nothing (in-process model, no price): as reported
            self.add_usage(usage)
            return note, stop
        above = usage.input_tokens > input_bound or usage.output_tokens > max_output
        reported = f"{usage.input_tokens} input / {usage.output_tokens} output tokens"
        implausible = above or usage.input_tokens <= 0 or usage.output_tokens <= 0
        if implausible or self.distrusted:
            if not self.charged_at_bound:
                note = (f"the judge server reported {reported} for a request whose bound is {input_bound} / "
                        f"{max_output}; such answers are charged at their bound")
            self.charged_at_bound += 1
            usage = Usage(input_bound, max_output)
        if above and not self.distrusted:
            self.distrusted = True
            if self.max_cost is not None:
                stop = BudgetExceeded(f"the server reported {reported} for one request, more than its bound of "
                                      f"{input_bound} / {max_output}, so its bills cannot be trusted: no new request "
                                      "is sent (answers in flight are charged at their bound)", self)
        self.add_usage(usage)
        return note, stop

    def add_usage(self, usage: Usage) -> None:
        self.paid += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens

    def budget_line(self) -> str:
        """Spent, the budget, what was not sent: the last line of a budget stop."""
        spent = "cost unknown" if self.cost is None else f"spent {self.cost:.4f} USD"
        budget = []
        if self.max_cost is not None:
            budget.append(f"--max-cost {self.max_cost:g} USD")
        if self.max_requests is not None:
            budget.append(f"--max-requests {self.max_requests}")
        limits = " and ".join(budget) or "the budget"
        return (f"{spent} on {self.paid} answers ({self.requests} requests sent) of {limits}; "
                f"{self.not_sent} requests not sent"
                + ("; every answer received is kept in the cache, so a rerun with a larger budget continues from "
                   "here" if self.caching else ""))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> dict[str, object]:
        """A JSON-friendly snapshot (never contains credentials)."""
        out: dict[str, object] = {
            "model": self.model,
            "requests_sent": self.requests,
            "answers_paid": self.paid,
            "cache_hits": self.cache_hits,
            "failures": self.failures,
            "retries": self.retries,
            "not_sent": self.not_sent,
            "charged_at_bound": self.charged_at_bound,
            "shared_waits": self.shared_waits,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": None if self.cost is None else round(self.cost, 6),
            "elapsed_s": round(self.elapsed(), 3),
        }
        if self.off_format:
            out["answers_outside_format"] = self.off_format
        if self.est_calls:
            out.update(estimated_calls=self.est_calls, estimated_input_tokens=self.est_input_tokens,
                       estimated_output_tokens=self.est_output_tokens,
                       estimated_cost_usd=self.estimated_cost())
        return out
