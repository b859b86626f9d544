"""A synthetic Long-RewardBench of the paper's composition, in the official record format, to estimate the cost of
a full run with ``lr-eval longrewardbench --dry-run`` where the hub data cannot be downloaded.

Composition: 1,900 items in the 7 tasks with the paper's counts (``lr_eval.tasks.longrewardbench.PAPER_COUNTS``:
LongQA 522, Summ 429, Cite 390, Code 197, ICL 162, Safety 140, Math 60), each task's items spread evenly over
the six length buckets 4k ... 128k (the first buckets take the remainder; the per-bucket counts are not in the
sources we could read, so this is our assumption). A context has the bucket's nominal length in tokens
(4k = 4,096 ... 128k = 131,072) times ``--scale``: three-letter words and a space, which is one token under the
dry run's estimate (four characters) and under common BPE vocabularies alike. Every item's context differs
(its own header and offset), so no prompt is counted twice. Answers are about 200 tokens each. By default every
item is a pair (2 calls each in prompt mode: the most calls the composition allows); ``--bestofn F`` makes the
share F of each task's items Best-of-N with 3 candidates (the dataset card: 3-4).

    python benchmarks/longrewardbench_synthetic.py OUT/            # then:
    lr-eval longrewardbench --data OUT/ --model gpt-4o-mini --prompts PROMPT.py --dry-run
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

from lr_eval.jsonl import write_jsonl_atomic
from lr_eval.tasks.longrewardbench import LENGTHS, PAPER_COUNTS, TASKS

WORDS = ("the and for was are but not you all any can had her one our out day get has him his how man new now old "
         "see two way who boy did its let put say she too use sun sea map red big top cup").split()
ANSWER_TOKENS = 200


def bucket_tokens(bucket: str) -> int:
    """The bucket's nominal length in tokens: "4k" -> 4,096."""
    return int(bucket.rstrip("k")) * 1024


def split(n: int, parts: int) -> list[int]:
    """n spread evenly over `parts`, the first parts taking the remainder."""
    return [n // parts + (i < n % parts) for i in range(parts)]


def text(rng: random.Random, pool: list[str], tokens: int) -> str:
    """`tokens` words of the pool from a random offset (wrapping round; `tokens` at most the pool's size)."""
    start = rng.randrange(len(pool))
    words = pool[start:start + tokens]
    return " ".join(words + pool[:tokens - len(words)])


def records(task: str, n: int, scale: float, bestofn: float, pool: list[str], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"{seed}:{task}")
    out = []
    index = 0
    n_rank = round(n * bestofn)
    for bucket, count in zip(LENGTHS, split(n, len(LENGTHS)), strict=True):
        for _ in range(count):
            header = f"Document {task}-{index} ({bucket} bucket, synthetic).\n"
            context = header + text(rng, pool, max(1, int(bucket_tokens(bucket) * scale)))
            question = f"Question {task}-{index}: what does the document say about the red cup?"
            answers = [f"Answer {k} to {task}-{index}: " + text(rng, pool, ANSWER_TOKENS) for k in range(3)]
            rec: dict[str, Any] = {"prompt_template": [{"role": "user", "content": f"{context}\n\n{question}"}],
                                   "question": question, "source": "synthetic", "task": task,
                                   "ctx_length_for_length": bucket}
            if index < n_rank:
                rec.update(tasktype="BestOfN", subtype="3", candidates=answers)
            else:
                rec.update(tasktype="PairWise", subtype="same" if index % 2 else "diff", chosen=answers[0],
                           rejected=answers[1])
            out.append(rec)
            index += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder for the <Task>.jsonl files")
    ap.add_argument("--scale", type=float, default=1.0, help="context length as a share of the bucket's (default 1)")
    ap.add_argument("--bestofn", type=float, default=0.0, help="share of each task's items that are Best-of-N")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    pool = [rng.choice(WORDS) for _ in range(bucket_tokens(LENGTHS[-1]))]
    args.out.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        rows = records(task, PAPER_COUNTS[task], args.scale, args.bestofn, pool, args.seed)
        write_jsonl_atomic(args.out / f"{task}.jsonl", rows)
        print(f"{task}: {len(rows)} items", flush=True)


if __name__ == "__main__":
    main()
