"""JudgeClient: the one path every judge call of the project goes through.

It adds to a backend: the defaults of every request filled in before it is keyed,
budgeted and sent (system prompt, max_tokens), the content-addressed cache with
claims shared across processes, in-flight de-duplication, bounded concurrency,
retries with exponential backoff and jitter (honouring Retry-After), the hard
budget, usage accounting, dry-run estimates and a progress bar.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from .accounting import UsageMeter, estimate_tokens, max_input_tokens
from .backends import Backend
from .cache import ResponseCache
from .progress import BatchProgress, console
from .retry import backoff_delay
from .types import BudgetExceeded, ChatRequest, ChatResult, JudgeFatalError, PermanentError, TransientError

T = TypeVar("T")

#: Alternatives asked for at each position when ratings are read from log-probabilities.
LOGPROB_ALTERNATIVES = 20


#: The client settings that complete() fills into every request, so that they enter its cache key. A stored
#: result (a resume key) is reused only where these are unchanged: `keyed_settings()` is that one list.
KEYED_SETTINGS = ("model", "system_prompt", "default_max_tokens", "structured", "score_from")


class JudgeClient:
    """Cached, retried, budgeted and counted access to one judge model."""

    def __init__(self, backend: Backend, cache: ResponseCache | None = None, concurrency: int = 16,
                 max_retries: int = 6, backoff_base: float = 0.5, backoff_max: float = 60.0,
                 meter: UsageMeter | None = None, dry_run: bool = False, default_max_tokens: int = 1024,
                 show_progress: bool = True, system_prompt: str | None = None, claim_lease: float = 30.0,
                 claim_poll: float = 0.25, structured: str | None = None, score_from: str = "text"):
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.backend = backend
        self.model = backend.model
        self.cache = cache
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.meter = meter or UsageMeter(model=backend.model)
        self.meter.caching = cache is not None
        self.dry_run = dry_run
        self.default_max_tokens = default_max_tokens
        self.system_prompt = system_prompt
        self.show_progress = show_progress
        # The form in which the backend enforces a request's answer format (None: not enforced), and where
        # 1-N ratings are read from ("text" or "logprobs"); both filled into requests before keying.
        self.structured = structured
        self.score_from = score_from
        # Claims in a shared cache: this client's name, how long a claim lives without renewal, how often
        # a client waiting on another process's claim looks again.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.claim_lease = claim_lease
        self.claim_poll = claim_poll
        self._owned: set[str] = set()
        self._answered: list[str] = []  # claims whose answer is stored: harmless, dropped in batches
        self._heartbeat: asyncio.Task[None] | None = None
        self._sem: asyncio.Semaphore | None = None
        self._settled: asyncio.Event | None = None  # set whenever a reservation is released
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self._inflight: dict[str, asyncio.Future[ChatResult]] = {}
        self._dry_seen: set[str] = set()
        self._fatal: JudgeFatalError | BudgetExceeded | None = None
        self._progress: BatchProgress | None = None

    def keyed_settings(self) -> dict[str, Any]:
        """This client's values of KEYED_SETTINGS: what a resume key must hold besides the work's own input."""
        return {name: getattr(self, name) for name in KEYED_SETTINGS}

    # -- one request -------------------------------------------------------------
    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem, self._sem_loop = asyncio.Semaphore(self.concurrency), loop
            self._settled = asyncio.Event()
            self._inflight = {}
        return self._sem

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answer one request: from the cache, from an identical request in flight, or from the judge.

        Raises JudgeFatalError / BudgetExceeded, which stop the whole batch (an answer already in the cache
        is still given after a stop: it costs nothing).
        """
        request = self.complete(request)
        key = request.cache_key(self.model)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return self._from_cache(hit)
        return await self._chat_uncached(request, key)

    def _refuse(self) -> None:
        """Raise the stop that ended the run for one more request; a budget stop counts it as not sent."""
        assert self._fatal is not None
        self.meter.not_sent += isinstance(self._fatal, BudgetExceeded)
        raise self._fatal

    def complete(self, request: ChatRequest) -> ChatRequest:
        """The request as it will be keyed, budgeted and sent: the configured system prompt (when the request
        has no system message), max_tokens, the structured form and the score mode filled in, so a backend
        sends exactly what was keyed."""
        messages = request.messages
        if self.system_prompt and not any(m["role"] == "system" for m in messages):
            messages = ({"role": "system", "content": self.system_prompt}, *messages)
        fmt = request.answer_format
        structured = request.structured or (self.structured if fmt is not None else None)
        score_from = request.score_from or (self.score_from if fmt is not None and fmt.ratings else "text")
        logprobs, top = request.logprobs, request.top_logprobs
        if score_from == "logprobs":  # the alternatives at the verdict position (20: the OpenAI API's maximum)
            logprobs, top = True, max(top or 0, LOGPROB_ALTERNATIVES)
        if (messages is request.messages and request.max_tokens is not None and structured == request.structured
                and score_from == request.score_from and (logprobs, top) == (request.logprobs, request.top_logprobs)):
            return request
        return replace(request, messages=messages, max_tokens=request.max_tokens or self.default_max_tokens,
                       structured=structured, score_from=score_from, logprobs=logprobs, top_logprobs=top)

    def _from_cache(self, hit: dict[str, Any]) -> ChatResult:
        self.meter.cache_hits += 1
        res = ChatResult.from_cache(hit)
        self._tick(res)
        return res

    async def _chat_uncached(self, request: ChatRequest, key: str, claimed: bool = False) -> ChatResult:
        """chat() after a cache miss: join an identical request in flight here, wait for another process
        that claimed it, or claim it and ask the judge."""
        if self._fatal is not None:
            self._refuse()
        sem = self._semaphore()
        pending = self._inflight.get(key)
        if pending is not None:
            res = await asyncio.shield(pending)
            return ChatResult(**{**res.__dict__, "cached": True}) if res.ok else res
        fut: asyncio.Future[ChatResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            if self.cache is not None and not self.dry_run:
                hit = None if claimed else await self._claim_or_wait(key)
                if hit is not None:
                    res = self._from_cache(hit)
                    fut.set_result(res)
                    return res
                self._own(key)
            res = await self._answer(request, key, sem)
            fut.set_result(res)
            return res
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(key, None)
            if key in self._owned:  # ended without storing an answer: let others have it
                self._owned.discard(key)
                if self.cache is not None:
                    self.cache.release([key], self.owner)

    async def _claim_or_wait(self, key: str) -> dict[str, Any] | None:
        """Claim `key` in the shared cache (None), or wait while another live process holds it and return
        its answer. A claim that expires (its owner died) or is released without an answer is taken over."""
        assert self.cache is not None
        waited = False
        while True:
            claimed, answered = self.cache.claim([key], self.owner, self.claim_lease)
            if key in answered:
                self.meter.shared_waits += int(waited)
                return answered[key]
            if key in claimed:
                return None
            if self._fatal is not None:
                self._refuse()
            waited = True
            await asyncio.sleep(self.claim_poll)

    def _drop_answered_claims(self) -> None:
        if self._answered and self.cache is not None:
            self.cache.release(self._answered, self.owner)
        self._answered = []

    def _own(self, key: str) -> None:
        """Hold a claim and keep it alive with a heartbeat while it is held."""
        self._owned.add(key)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._renew_claims())

    async def _renew_claims(self) -> None:
        while self._owned and self.cache is not None:
            await asyncio.sleep(self.claim_lease / 3)
            if self._owned:
                self.cache.renew(self.owner, self.claim_lease)

    async def _answer(self, request: ChatRequest, key: str, sem: asyncio.Semaphore) -> ChatResult:
        assert request.max_tokens is not None  # complete() set it
        max_out = request.max_tokens
        if self.dry_run:
            res = ChatResult(content=None, error="dry run: not sent", error_kind="dry_run")
            if key in self._dry_seen:  # a real run would answer it from the cache
                self._tick(res)
                return res
            self._dry_seen.add(key)
            self.meter.est_calls += 1
            self.meter.est_input_tokens += sum(estimate_tokens(m["content"]) + 4 for m in request.messages)
            self.meter.est_output_tokens += max_out
            self._tick(res)
            return res
        bound = max_input_tokens(request.messages)
        attempt = 0
        while True:
            async with sem:
                hold = await self._reserve(bound, max_out)
                attempt += 1
                try:
                    res = await self.backend.send(request)
                except TransientError as e:
                    last, wait = e, e.retry_after
                    if e.refused and self.meter.paid == 0 and self.meter.cache_hits == 0:
                        # Nothing ever answered: a wrong URL or a server that is not up, not a hiccup.
                        self._fatal = JudgeFatalError(str(e))
                        raise self._fatal from None
                except PermanentError as e:
                    self.meter.failures += 1
                    res = ChatResult(content=None, error=str(e), error_kind="bad_request", attempts=attempt)
                    self._tick(res)
                    return res
                except JudgeFatalError as e:
                    self._fatal = e
                    raise
                else:
                    res.attempts = attempt
                    # Paid for: store it before anything else can stop the run.
                    if self.cache is not None:
                        self.cache.put(key, self.model, f"{request.template_id}@{request.template_version}",
                                       res.to_cache())
                        self._owned.discard(key)
                        self._answered.append(key)  # its claim is dropped in a batch (one write per answer)
                        if len(self._answered) >= 256:
                            self._drop_answered_claims()
                    note, stop = self.meter.settle(res.usage, bound, max_out)
                    if note:
                        console.print(f"warning: {note}", style="yellow", markup=False)
                    if stop is not None and self._fatal is None:
                        self._fatal = stop  # no new request; this paid answer is still returned
                    self._tick(res)
                    return res
                finally:
                    self.meter.release(hold)
                    assert self._settled is not None
                    self._settled.set()
            # Back off outside the semaphore so that waiting requests do not block others.
            if attempt > self.max_retries:
                if last.refused:
                    self._fatal = JudgeFatalError(f"{last} (after {attempt} attempts)")
                    raise self._fatal
                self.meter.failures += 1
                res = ChatResult(content=None, error=f"gave up after {attempt} attempts: {last}",
                                 error_kind="retries_exhausted", attempts=attempt)
                self._tick(res)
                return res
            self.meter.retries += 1
            await asyncio.sleep(backoff_delay(attempt, self.backoff_base, self.backoff_max, wait))

    async def _reserve(self, bound: int, max_out: int) -> float:
        """Hold the worst-case cost of one request, waiting while it fits only once requests in flight
        settle; a request that cannot fit at all (or comes after a stop) is refused."""
        assert self._settled is not None
        while True:
            if self._fatal is not None:
                self._refuse()
            try:
                hold = self.meter.reserve(bound, max_out)
            except BudgetExceeded as e:
                self._fatal = e
                self._refuse()
            if hold is not None:
                return hold
            self._settled.clear()
            await self._settled.wait()

    def _tick(self, res: ChatResult) -> None:
        if self._progress is not None:
            self._progress.advance(res, self.meter)

    # -- many requests -----------------------------------------------------------
    async def chat_many(self, requests: Sequence[ChatRequest], desc: str = "judging") -> list[ChatResult]:
        """Answer all requests concurrently; results in input order."""
        requests = [self.complete(r) for r in requests]
        keys = [r.cache_key(self.model) for r in requests]
        # One cache query (and one claim transaction) for the whole batch instead of one per request: reruns
        # are fast, and a large batch does not hold up the event loop (and its first requests) with lookups.
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        claimed: set[str] = set()
        if self.cache is not None and not self.dry_run:
            todo = [k for k in keys if k not in hits and k not in self._inflight]
            claimed, answered = self.cache.claim(todo, self.owner, self.claim_lease) if todo else (set(), {})
            hits.update(answered)
            for k in claimed:
                self._own(k)
        with self.progress(desc, len(requests)):
            results: list[ChatResult | None] = [
                self._from_cache(hits[k]) if k in hits else None for k in keys]
            misses = [i for i, res in enumerate(results) if res is None]
            first = {keys[i]: i for i in reversed(misses)}  # a claimed key is sent by its first request only
            try:
                answers = await gather_or_cancel([
                    self._chat_uncached(requests[i], keys[i], claimed=keys[i] in claimed and first[keys[i]] == i)
                    for i in misses])
            finally:  # claims of requests that never started (a stop came first) go back at once
                leftover = [k for k in claimed if k in self._owned and k not in self._inflight]
                if leftover and self.cache is not None:
                    self._owned.difference_update(leftover)
                    self.cache.release(leftover, self.owner)
                self._drop_answered_claims()
            for i, res in zip(misses, answers, strict=True):
                results[i] = res
            return results  # type: ignore[return-value]  # every slot filled

    def run(self, requests: Sequence[ChatRequest], desc: str = "judging") -> list[ChatResult]:
        """Synchronous chat_many, usable from plain code (and from inside a running loop)."""
        return self.run_coroutine(lambda: self.chat_many(requests, desc))

    def run_coroutine(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine that uses this client to completion on a fresh event loop (see run_sync).

        The backend's connections belong to that loop, so they are closed before it ends;
        the next call opens new ones.
        """
        async def go() -> T:
            try:
                return await make()
            finally:
                self._drop_answered_claims()
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
    """gather(), but a failure cancels the rest instead of leaving them running.

    A budget stop is the exception: no new request starts after it, but the ones in flight are paid for, so
    they run to the end (and their answers are cached) before the stop is raised.
    """
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BudgetExceeded:
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def shared_task(aw: Awaitable[T]) -> asyncio.Future[T]:
    """ensure_future for a result that several coroutines await (a prompt's shared extraction, ...).

    Its exception is marked retrieved: when a stop leaves it unawaited, it is reported once by whoever
    awaited it, not again by asyncio as "Task exception was never retrieved" with a traceback.
    """
    fut = asyncio.ensure_future(aw)
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())
    return fut


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
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
    value: T = box["value"]
    return value
