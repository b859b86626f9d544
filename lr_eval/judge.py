"""JudgeClient: the one path every judge call of the project goes through.

It adds to a backend: the content-addressed cache, in-flight de-duplication,
bounded concurrency, retries with exponential backoff and jitter (honouring
Retry-After), the hard budget, usage accounting, dry-run estimates and a
progress bar.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from .accounting import UsageMeter, estimate_tokens
from .backends import Backend
from .cache import ResponseCache
from .progress import BatchProgress
from .types import BudgetExceeded, ChatRequest, ChatResult, JudgeFatalError, PermanentError, TransientError

T = TypeVar("T")


class JudgeClient:
    """Cached, retried, budgeted and counted access to one judge model."""

    def __init__(self, backend: Backend, cache: ResponseCache | None = None, concurrency: int = 16,
                 max_retries: int = 6, backoff_base: float = 0.5, backoff_max: float = 60.0,
                 meter: UsageMeter | None = None, dry_run: bool = False, default_max_tokens: int = 1024,
                 show_progress: bool = True):
        self.backend = backend
        self.model = backend.model
        self.cache = cache
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.meter = meter or UsageMeter(model=backend.model)
        self.dry_run = dry_run
        self.default_max_tokens = default_max_tokens
        self.show_progress = show_progress
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self._inflight: dict[str, asyncio.Future[ChatResult]] = {}
        self._dry_seen: set[str] = set()
        self._fatal: JudgeFatalError | BudgetExceeded | None = None
        self._progress: BatchProgress | None = None

    # -- one request -------------------------------------------------------------
    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem, self._sem_loop = asyncio.Semaphore(self.concurrency), loop
            self._inflight = {}
        return self._sem

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answer one request: from the cache, from an identical request in flight, or from the judge.

        Raises JudgeFatalError / BudgetExceeded, which stop the whole batch.
        """
        if self._fatal is not None:
            raise self._fatal
        key = request.cache_key(self.model)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return self._from_cache(hit)
        return await self._chat_uncached(request, key)

    def _from_cache(self, hit: dict[str, Any]) -> ChatResult:
        self.meter.cache_hits += 1
        res = ChatResult.from_cache(hit)
        self._tick(res)
        return res

    async def _chat_uncached(self, request: ChatRequest, key: str) -> ChatResult:
        """chat() after a cache miss."""
        if self._fatal is not None:
            raise self._fatal
        sem = self._semaphore()
        pending = self._inflight.get(key)
        if pending is not None:
            res = await asyncio.shield(pending)
            return ChatResult(**{**res.__dict__, "cached": True}) if res.ok else res
        fut: asyncio.Future[ChatResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            res = await self._answer(request, key, sem)
            fut.set_result(res)
            return res
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(key, None)

    async def _answer(self, request: ChatRequest, key: str, sem: asyncio.Semaphore) -> ChatResult:
        est_in = sum(estimate_tokens(m["content"]) + 4 for m in request.messages)
        max_out = request.max_tokens or self.default_max_tokens
        if self.dry_run:
            res = ChatResult(content=None, error="dry run: not sent", error_kind="dry_run")
            if key in self._dry_seen:  # a real run would answer it from the cache
                self._tick(res)
                return res
            self._dry_seen.add(key)
            self.meter.est_calls += 1
            self.meter.est_input_tokens += est_in
            self.meter.est_output_tokens += max_out
            self._tick(res)
            return res
        attempt = 0
        last_error = ""
        while True:
            async with sem:
                if self._fatal is not None:
                    raise self._fatal
                try:
                    hold = self.meter.reserve(est_in, max_out)
                except BudgetExceeded as e:
                    self._fatal = e
                    raise
                attempt += 1
                try:
                    res = await self.backend.send(request)
                except TransientError as e:
                    last_error, wait = str(e), e.retry_after
                except PermanentError as e:
                    self.meter.failures += 1
                    res = ChatResult(content=None, error=str(e), error_kind="bad_request", attempts=attempt)
                    self._tick(res)
                    return res
                except JudgeFatalError as e:
                    self._fatal = e
                    raise
                else:
                    self.meter.add_usage(res.usage)
                    res.attempts = attempt
                    if self.cache is not None:
                        self.cache.put(key, self.model, f"{request.template_id}@{request.template_version}",
                                       res.to_cache())
                    self._tick(res)
                    return res
                finally:
                    self.meter.release(hold)
            # Back off outside the semaphore so that waiting requests do not block others.
            if attempt > self.max_retries:
                self.meter.failures += 1
                res = ChatResult(content=None, error=f"gave up after {attempt} attempts: {last_error}",
                                 error_kind="retries_exhausted", attempts=attempt)
                self._tick(res)
                return res
            self.meter.retries += 1
            backoff = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
            delay = random.uniform(0, backoff)  # full jitter
            if wait is not None:
                delay = max(delay, wait)
            await asyncio.sleep(delay)

    def _tick(self, res: ChatResult) -> None:
        if self._progress is not None:
            self._progress.advance(res, self.meter)

    # -- many requests -----------------------------------------------------------
    async def chat_many(self, requests: Sequence[ChatRequest], desc: str = "judging") -> list[ChatResult]:
        """Answer all requests concurrently; results in input order."""
        if self._fatal is not None:
            raise self._fatal
        keys = [r.cache_key(self.model) for r in requests]
        # One cache query for the whole batch instead of one per request: reruns are fast, and a
        # large batch does not hold up the event loop (and its first requests) with lookups.
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        with self.progress(desc, len(requests)):
            results: list[ChatResult | None] = [
                self._from_cache(hits[k]) if k in hits else None for k in keys]
            misses = [i for i, res in enumerate(results) if res is None]
            answers = await gather_or_cancel([self._chat_uncached(requests[i], keys[i]) for i in misses])
            for i, res in zip(misses, answers, strict=True):
                results[i] = res
            return results  # type: ignore[return-value]

    def run(self, requests: Sequence[ChatRequest], desc: str = "judging") -> list[ChatResult]:
        """Synchronous chat_many, usable from plain code (and from inside a running loop)."""
        return self.run_coroutine(lambda: self.chat_many(requests, desc))

    def run_coroutine(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine that uses this client to completion on a fresh event loop (see run_sync).

        The backend's connections belong to that loop, so they are closed before it ends;
        the next call opens new ones.
        """
        async def go() -> T:
            try:
                return await make()
            finally:
                await self.backend.aclose()

        return run_sync(go)

    def progress(self, desc: str, total: int) -> BatchProgress:
        """A progress bar for `total` judge calls; a batch started while one is shown joins it."""
        if self._progress is not None:
            return self._progress.grow(total)
        return BatchProgress(self, desc, total, enabled=self.show_progress)

    def expect_more(self, n: int) -> None:
        """Announce `n` more calls to the bar being shown (re-asks, stages that learn their size late)."""
        if self._progress is not None:
            self._progress.grow(n)

    async def aclose(self) -> None:
        await self.backend.aclose()

    def summary(self) -> dict[str, Any]:
        return self.meter.summary()


async def gather_or_cancel(aws: Sequence[Awaitable[T]]) -> list[T]:
    """gather(), but a failure (fatal judge error, budget stop) cancels the rest instead of leaving them running."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    Inside an already running event loop (Jupyter, some harnesses) the coroutine
    runs on a fresh loop in a helper thread instead of failing.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
