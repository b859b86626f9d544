"""Judge client throughput against the scripted server with a fixed simulated latency.

The server runs in its own process so that its CPU does not count as the
client's. Baseline in the same run: the ideal rate, concurrency / latency.
Prints achieved requests/s over ideal and the client's CPU time per request
(the cache is on, as in real use). Target: >= 0.95 of ideal at concurrency 64
with 200 ms latency.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lr_eval.backends import OpenAIBackend
from lr_eval.cache import ResponseCache
from lr_eval.judge import JudgeClient
from lr_eval.types import ChatRequest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--waves", type=int, default=20, help="requests = concurrency x waves")
    args = p.parse_args()

    server = subprocess.Popen([sys.executable, "-m", "lr_eval.scripted_server", "--latency", str(args.latency)],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        n = args.concurrency * args.waves
        with tempfile.TemporaryDirectory() as tmp:
            client = JudgeClient(OpenAIBackend("bench", f"http://127.0.0.1:{port}/v1", "k", timeout=30),
                                 cache=ResponseCache(Path(tmp) / "cache.sqlite"), concurrency=args.concurrency,
                                 show_progress=False)
            # warm-up: connections and imports, not timed
            client.run([ChatRequest.of([{"role": "user", "content": f"warm {i}"}]) for i in range(args.concurrency)])
            reqs = [ChatRequest.of([{"role": "user", "content": f"judge this answer #{i} " + "x" * 200}],
                                   max_tokens=16) for i in range(n)]
            load = os.getloadavg()[0]
            cpu0, t0 = time.process_time(), time.perf_counter()
            results = client.run(reqs)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        failed = sum(not r.ok for r in results)
        ideal = args.concurrency / args.latency
        achieved = n / wall
        ratio = achieved / ideal
        print(f"requests={n} concurrency={args.concurrency} latency={args.latency * 1000:.0f}ms failed={failed}")
        print(f"ideal={ideal:.1f} req/s achieved={achieved:.1f} req/s wall={wall:.2f}s")
        print(f"client_cpu_per_request={cpu / n * 1000:.3f} ms  cores={os.cpu_count()} "
              f"load_avg_1min_before={load:.2f} (other work on the machine lowers the ratio)")
        print(f"RESULT throughput_ratio_vs_ideal {ratio:.3f} (target >= 0.95)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
