"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for tests, benchmarks and demos.

It speaks enough of the API for the `openai` client (chat completions with
logprobs, embeddings, models), answers from a script, and injects faults
deterministically: 429 with Retry-After, 500, hangs past the client's timeout
and malformed bodies. It counts what it received and what it was *paid* for
(a well-formed 200 answer), per request content, so tests can prove that each
paid request was made exactly once.

Tests of concurrency and of interrupted runs wait on events, never on the clock
(a loaded machine stretches every duration): ``gate=n`` holds each answer until
``n`` requests have been in flight at once (``max_in_flight`` tells how many
were), and ``hold_after=n`` answers the first ``n`` requests and holds the rest
until ``release()``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    """A scripted answer: a chat completion (content) or an HTTP error (status + message)."""

    content: str | None = None
    status: int = 200
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    top_logprobs: list[dict[str, float]] | None = None
    #: (prompt_tokens, completion_tokens) to report instead of the default word counts (a server that bills
    #: per character, or more than it could have processed).
    usage: tuple[int, int] | None = None
    #: Leave the "usage" object out of the answer (a server that reports nothing).
    omit_usage: bool = False
    #: Close the connection after this many seconds instead of answering (a dropped connection).
    drop_after: float | None = None
    #: Append the request's Authorization header to the error message (a server that echoes credentials).
    echo_auth: bool = False


Responder = Callable[[dict[str, Any]], "str | Reply"]


def echo_responder(body: dict[str, Any]) -> str:
    """Default script: a deterministic answer derived from the request's messages."""
    return "echo:" + request_key(body)[:16]


def request_key(body: dict[str, Any]) -> str:
    """Identity of a request's content (what a cache would key on)."""
    blob = json.dumps({k: body.get(k) for k in ("model", "messages", "temperature", "max_tokens", "input")},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class FaultPlan:
    """Per-attempt fault probabilities, decided by a seeded hash of (request, attempt number).

    After `max_faults` faults for one request the next attempt succeeds, so every
    request completes under a client that retries enough.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_hang: float = 0.0
    rate_malformed: float = 0.0
    retry_after: float = 0.05
    hang_seconds: float = 3.0
    max_faults: int = 3
    seed: int = 0

    def pick(self, key: str, attempt: int, faults_so_far: int) -> str | None:
        if faults_so_far >= self.max_faults:
            return None
        r = random.Random(f"{self.seed}:{key}:{attempt}").random()
        for kind, rate in (("429", self.rate_429), ("500", self.rate_500), ("hang", self.rate_hang),
                           ("malformed", self.rate_malformed)):
            if r < rate:
                return kind
            r -= rate
        return None


class ScriptedServer:
    """Run with `with ScriptedServer(...) as srv:` and point a client at `srv.base_url`."""

    def __init__(self, responder: Responder | None = None, latency: float = 0.0,
                 faults: FaultPlan | None = None, api_key: str | None = None, host: str = "127.0.0.1",
                 port: int = 0, embed_dim: int = 16, gate: int = 0, gate_timeout: float = 120.0,
                 hold_after: int | None = None):
        self.responder = responder or echo_responder
        self.latency = latency
        self.faults = faults or FaultPlan()
        self.api_key = api_key
        self.host, self.port = host, port
        self.embed_dim = embed_dim
        self.received: Counter[str] = Counter()     # attempts per request key
        self.paid: Counter[str] = Counter()         # well-formed 200 answers per request key
        self.fault_counts: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []      # every chat request body, in arrival order
        self._faults_per_key: Counter[str] = Counter()
        self.gate, self.gate_timeout, self.hold_after = gate, gate_timeout, hold_after
        self.in_flight = 0
        self.max_in_flight = 0                      # most requests handled at the same time
        self._admitted = 0
        self._gate_open: asyncio.Event | None = None
        self._released: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def total_paid(self) -> int:
        return sum(self.paid.values())

    def release(self) -> None:
        """Answer the requests held by ``hold_after`` (and every later one)."""
        assert self._loop is not None and self._released is not None
        self._loop.call_soon_threadsafe(self._released.set)

    # -- HTTP handlers ---------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        return app

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._counted(self._chat_reply(request))

    async def _counted(self, reply: Awaitable[web.StreamResponse]) -> web.StreamResponse:
        """Await a handler's reply, counting it in flight meanwhile."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await reply
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _chat_reply(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        body = await request.json()
        key = request_key(body)
        with self._lock:
            self.bodies.append(body)
        faulty = await self._fault(key)
        if faulty is not None:
            return faulty
        reply = self.responder(body)
        if isinstance(reply, str):
            reply = Reply(content=reply)
        if reply.drop_after is not None:
            await asyncio.sleep(reply.drop_after)
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never reaches the client: its connection is gone
        if reply.status != 200:
            echo = f" from {request.headers.get('Authorization', '')}" if reply.echo_auth else ""
            return _error(reply.status, reply.message + echo, "scripted", reply.headers)
        with self._lock:
            self.paid[key] += 1
        return web.json_response(_completion(body, reply))

    async def _fault(self, key: str) -> web.Response | None:
        """Count the attempt, wait the simulated latency, and answer with the planned fault, if any."""
        with self._lock:
            self.received[key] += 1
            fault = self.faults.pick(key, self.received[key], self._faults_per_key[key])
            if fault:
                self._faults_per_key[key] += 1
                self.fault_counts[fault] += 1
            self._admitted += 1
            held = self.hold_after is not None and self._admitted > self.hold_after
        await self._wait_for_events(held)
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault == "429":
            return _error(429, "Rate limit reached.", "rate_limit_exceeded",
                          {"Retry-After": f"{self.faults.retry_after:g}"})
        if fault == "500":
            return _error(500, "The server had an error.", "server_error")
        if fault == "hang":
            await asyncio.sleep(self.faults.hang_seconds)
            return _error(504, "gateway timeout", "timeout")
        if fault == "malformed":
            return web.Response(status=200, text='{"id": "x", "choices": [', content_type="application/json")
        return None

    async def _wait_for_events(self, held: bool) -> None:
        assert self._gate_open is not None and self._released is not None
        if held:
            await self._released.wait()
        if self.gate and not self._gate_open.is_set():
            if self.in_flight >= self.gate:
                self._gate_open.set()
            else:
                try:  # a client that never sends `gate` requests at once is answered anyway, and fails its test
                    await asyncio.wait_for(self._gate_open.wait(), self.gate_timeout)
                except asyncio.TimeoutError:
                    pass

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._counted(self._embeddings_reply(request))

    async def _embeddings_reply(self, request: web.Request) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        body = await request.json()
        faulty = await self._fault(request_key(body))
        if faulty is not None:
            return faulty
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": hash_embedding(str(t), self.embed_dim)}
                for i, t in enumerate(inputs)]
        tokens = sum(len(str(t).split()) for t in inputs)
        with self._lock:
            self.paid["embeddings"] += 1
        return web.json_response({"object": "list", "data": data, "model": body.get("model", ""),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> ScriptedServer:
        self._thread = threading.Thread(target=self._serve, daemon=True, name="scripted-server")
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("scripted server did not start")
        return self

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._gate_open, self._released = asyncio.Event(), asyncio.Event()
            self._runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=0.1)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
            await site.start()
            # the ignore below: aiohttp's private server: started above
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._started.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._runner is not None
        runner = self._runner

        async def shutdown() -> None:
            await runner.cleanup()
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:  # handlers still sleeping in a scripted hang
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": code, "code": code}}, status=status,
                             headers=headers or {})


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    content = reply.content or ""
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    completion_tokens = len(content.split())
    if reply.usage is not None:
        prompt_tokens, completion_tokens = reply.usage
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": content}}
    if body.get("logprobs"):
        steps = reply.top_logprobs or [{content: 0.0}]
        choice["logprobs"] = {"content": [
            {"token": max(s, key=lambda t: s[t]), "logprob": max(s.values()), "bytes": None,
             "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in s.items()]}
            for s in steps]}
    out = {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
           "model": body.get("model", "scripted"), "choices": [choice],
           "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "total_tokens": prompt_tokens + completion_tokens}}
    if reply.omit_usage:
        del out["usage"]
    return out


def hash_embedding(text: str, dim: int) -> list[float]:
    """A deterministic bag-of-words embedding: texts sharing words are close in cosine."""
    vec = [0.0] * dim
    for word in text.lower().split():
        h = int(hashlib.md5(word.encode()).hexdigest(), 16)
        vec[h % dim] += 1.0 if (h >> 8) % 2 else -1.0
    return vec


def main(argv: list[str] | None = None) -> None:
    """Serve from the command line (used by benchmarks to keep the server out of the client's process)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    args = p.parse_args(argv)
    with ScriptedServer(latency=args.latency, port=args.port) as srv:
        print(srv.port, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
