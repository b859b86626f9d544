"""The LongReward-10k data pipeline in bounded memory: `lr-train sample → score → pairs` on a synthetic set.

Each size runs in a fresh subprocess (so its peak RSS is its own): N prompts × 10 responses with short
contexts, sampled by a scripted in-process policy (a distinct short answer per seed, no HTTP), scored by
LongReward with the canned judge of ``lr_eval.testing.canned_judge`` as an in-process backend (instant, no
HTTP) and the BM25 retriever, then turned into pairs. The steps are the library functions the CLI runs
(``run_sample``, ``score_sample_groups``, ``run_pairs``): the same streaming readers, resumable writers and
windows. Prints peak RSS at 1,000 vs 10,000 prompts (and above the process's RSS after its imports) and
wall time per 1,000 prompts per step; the baseline is the 1,000-prompt run of the same invocation.

    python benchmarks/pipeline_scale.py                       # 1,000 and 10,000 prompts (minutes on 2 cores)
    python benchmarks/pipeline_scale.py --sizes 200,2000      # quicker
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORDS = ("lighthouse harbour keeper lantern storm ferry canal bridge mill archive ledger council railway "
         "station orchard quarry beacon tide signal charter").split()


def rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_prompts(path: Path, n: int, seed: int = 0) -> None:
    """N short-context prompts, streamed to disk (never held in memory)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            facts = [f"The {rng.choice(WORDS)} of place {i} opened in {1800 + rng.randrange(200)}." for _ in range(6)]
            f.write(json.dumps({"id": f"p{i}", "context": " ".join(facts),
                                "question": f"When did the {rng.choice(WORDS)} of place {i} open?"}) + "\n")


class ScriptedPolicy:
    """The policy in process: a distinct one- or two-sentence answer per prompt and seed."""

    model = "scripted-policy"

    async def send(self, request: Any) -> Any:
        from lr_eval.types import ChatResult, Usage

        text = request.messages[-1]["content"]
        seed = request.seed or 0
        year = 1800 + (sum(map(ord, text[:60])) + seed * 7) % 200
        body = f"It opened in {year}." + (" The records agree on it." if seed % 2 else "")
        return ChatResult(content=f"{body} (sample {seed})", usage=Usage(len(text) // 4, 12), finish_reason="stop")

    async def aclose(self) -> None:
        return None


class CannedJudgeBackend:
    """The canned LongReward judge in process: the scripted server's answers without HTTP."""

    model = "canned-judge"

    def __init__(self) -> None:
        from lr_eval.testing.canned_judge import CannedJudge

        self.judge = CannedJudge()
        self.judge.calls = _NoList()  # the canned judge logs every call; a benchmark must not grow with it

    async def send(self, request: Any) -> Any:
        from lr_eval.types import ChatResult, Usage

        content = str(self.judge({"messages": list(request.messages)}))
        return ChatResult(content=content, usage=Usage(0, len(content) // 4))

    async def aclose(self) -> None:
        return None


class _NoList(list):  # type: ignore[type-arg]
    def append(self, _: Any) -> None:
        return None


def worker(n: int, workdir: Path) -> dict[str, Any]:
    """One size, in this (fresh) process: sample → score → pairs; timings and peak RSS."""
    from lr_eval.config import JudgeConfig, build_client
    from lr_eval.embed import build_embedder
    from lr_eval.reward.chunking import minilm_path
    from lr_eval.reward.engine import result_options
    from lr_eval.reward.scorer import LongRewardScorer, RewardConfig
    from lr_eval.train.pairs import PairPolicy, run_pairs
    from lr_eval.train.score import score_sample_groups
    from lr_eval.train.sample import PolicyConfig, SampleConfig, run_sample

    prompts, samples, scores, pairs = (workdir / f"{x}.jsonl" for x in ("prompts", "samples", "scores", "pairs"))
    write_prompts(prompts, n)
    judge = JudgeConfig(model="canned-judge", cache="none")
    cfg = RewardConfig(embedder="bm25", tokenizer=str(minilm_path()))
    scorer = LongRewardScorer(build_client(judge, show_progress=False, backend=CannedJudgeBackend()), cfg,
                              embedder=build_embedder("bm25"))
    base = rss_mib()
    t0 = time.perf_counter()
    _, stats, _ = run_sample(prompts, samples, PolicyConfig(model="scripted-policy", max_model_len=0, cache="none"),
                             SampleConfig(n=10, max_tokens=64), show_progress=False, backend=ScriptedPolicy())
    t1 = time.perf_counter()
    run = score_sample_groups(scorer, samples, scores, result_options(judge, scorer, False), False, 16)
    t2 = time.perf_counter()
    report = run_pairs(samples, scores, pairs, PairPolicy())
    t3 = time.perf_counter()
    return {"prompts": n, "responses": stats.responses, "scored": run.scored, "pairs": report.kept,
            "rss_after_imports_mib": base, "peak_rss_mib": rss_mib(),
            "s_per_1k": {"sample": (t1 - t0) * 1000 / n, "score": (t2 - t1) * 1000 / n, "pairs": (t3 - t2) * 1000 / n}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000", help="two prompt counts: baseline,target")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, Path(a.workdir))))
        return
    small, large = (int(x) for x in a.sizes.split(","))
    rows = []
    for n in (small, large):
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([sys.executable, __file__, "--worker", str(n), "--workdir", tmp],
                                  capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.exit(f"worker for {n} prompts failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{'prompts':>8} {'responses':>9} {'scored':>7} {'pairs':>6} {'RSS after imports':>17} {'peak RSS':>9} "
          f"{'s/1k sample':>11} {'s/1k score':>10} {'s/1k pairs':>10}")
    for r in rows:
        t = r["s_per_1k"]
        print(f"{r['prompts']:>8,} {r['responses']:>9,} {r['scored']:>7,} {r['pairs']:>6,} "
              f"{r['rss_after_imports_mib']:>13.1f} MiB {r['peak_rss_mib']:>5.1f} MiB "
              f"{t['sample']:>11.2f} {t['score']:>10.2f} {t['pairs']:>10.3f}")
    growth = [r["peak_rss_mib"] - r["rss_after_imports_mib"] for r in rows]
    print(f"peak RSS above the imports: {growth[0]:.1f} MiB at {small:,} prompts, {growth[1]:.1f} MiB at {large:,}")
    ratio = rows[1]["peak_rss_mib"] / rows[0]["peak_rss_mib"]
    print(f"RESULT pipeline_rss_ratio_{large // 1000}k_vs_{small // 1000}k {ratio:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
