"""Judge client throughput against the scripted server with a fixed simulated latency.

The server runs in its own process so that its CPU does not count as the
client's. Baseline in the same run: the ideal rate, concurrency / latency.
Prints achieved requests/s over ideal and the client's CPU time per request
(the cache and its cross-process claims are on, as in real use). Target:
ours >= 0.95 of the openai client alone (below) at concurrency 64 with 200 ms
latency; the ratio to ideal is printed too.

Two references run in the same harness, so each run shows where the time goes:
a bare aiohttp client (no openai package, no cache: the harness's own ceiling)
and the openai client alone (same transport as ours, no cache, retries or
accounting: the ceiling of any client built on the openai package).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from lr_eval.backends import OpenAIBackend
from lr_eval.cache import ResponseCache
from lr_eval.judge import JudgeClient
from lr_eval.types import ChatRequest


async def raw_reference(port: int, concurrency: int, n: int) -> tuple[float, float]:
    """The same requests from a bare aiohttp client (wall s, CPU s)."""
    import aiohttp

    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(body: dict) -> None:
            async with session.post(url, json=body) as resp:
                await resp.json()

        return await _timed(one, "raw", concurrency, n)


async def openai_reference(port: int, concurrency: int, n: int) -> tuple[float, float]:
    """The same requests from the openai client alone, as OpenAIBackend configures it (wall s, CPU s)."""
    backend = OpenAIBackend("bench", f"http://127.0.0.1:{port}/v1", "k", timeout=30)
    client = backend._get_client()

    async def one(body: dict) -> None:
        await client.post("/chat/completions", body=body, cast_to=dict)

    try:
        return await _timed(one, "openai", concurrency, n)
    finally:
        await backend.aclose()


async def _timed(one: Callable[[dict], Awaitable[None]], tag: str, concurrency: int, n: int) -> tuple[float, float]:
    """Warm up, then time n requests at the given concurrency (wall s, CPU s)."""
    sem = asyncio.Semaphore(concurrency)

    async def limited(i: int, phase: str) -> None:
        body = {"model": "bench", "messages": [{"role": "user", "content": f"{tag} {phase} {i}"}], "max_tokens": 16}
        async with sem:
            await one(body)

    await asyncio.gather(*(limited(i, "warm") for i in range(concurrency)))
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(limited(i, "timed") for i in range(n)))
    return time.perf_counter() - t0, time.process_time() - cpu0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--waves", type=int, default=20, help="requests = concurrency x waves")
    args = p.parse_args()

    server = subprocess.Popen([sys.executable, "-m", "lr_eval.testing.scripted_server", "--latency", str(args.latency)],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        n = args.concurrency * args.waves
        with tempfile.TemporaryDirectory() as tmp:
            client = JudgeClient(OpenAIBackend("bench", f"http://127.0.0.1:{port}/v1", "k", timeout=30),
                                 cache=ResponseCache(Path(tmp) / "cache.sqlite"), concurrency=args.concurrency,
                                 show_progress=False)
            reqs = [ChatRequest.of([{"role": "user", "content": f"judge this answer #{i} " + "x" * 200}],
                                   max_tokens=16) for i in range(n)]
            warm = [ChatRequest.of([{"role": "user", "content": f"warm {i}"}]) for i in range(args.concurrency)]

            async def measure() -> tuple[list, float, float, float]:
                # Warm-up in the same event loop: the timed part reuses its connections.
                await client.chat_many(warm)
                load = os.getloadavg()[0]
                cpu0, t0 = time.process_time(), time.perf_counter()
                results = await client.chat_many(reqs)
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                await client.aclose()
                return results, wall, cpu, load

            results, wall, cpu, load = asyncio.run(measure())
            raw_wall, raw_cpu = asyncio.run(raw_reference(port, args.concurrency, n))
            oai_wall, oai_cpu = asyncio.run(openai_reference(port, args.concurrency, n))
        failed = sum(not r.ok for r in results)
        ideal = args.concurrency / args.latency
        achieved = n / wall
        ratio = achieved / ideal
        print(f"requests={n} concurrency={args.concurrency} latency={args.latency * 1000:.0f}ms failed={failed}")
        print(f"ideal={ideal:.1f} req/s achieved={achieved:.1f} req/s wall={wall:.2f}s")
        print(f"client_cpu_per_request={cpu / n * 1000:.3f} ms  cores={os.cpu_count()} "
              f"load_avg_1min_before={load:.2f} (other work on the machine lowers the ratio)")
        for name, (w, c) in (("bare aiohttp client (harness ceiling)", (raw_wall, raw_cpu)),
                             ("openai client alone (ceiling on the openai package)", (oai_wall, oai_cpu))):
            print(f"reference, {name}: {n / w / ideal:.3f} of ideal, {c / n * 1000:.3f} ms CPU per request")
        print(f"ours: {ratio:.3f} of ideal")
        # The target (issue 10): ours over the openai client alone, measured in this same run. On 2 shared cores
        # even a bare aiohttp client misses 0.95 of ideal, so ideal is reported but not the target.
        print(f"RESULT throughput_ratio_vs_openai_client {oai_wall / wall:.3f} (target >= 0.95)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
