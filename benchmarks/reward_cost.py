"""Judge calls, judge input tokens and embedding tokens per scored response: our LongReward pipeline
against the reference pipeline's call pattern, on a fixed synthetic workload.

Workload (seeded): P prompts x N sampled responses, contexts of 8k-32k tokens
made of sentences about invented facts. Responses restate some of the
prompt's facts (each fact has a few phrasings, so sampled responses sometimes
produce the very same statement, as they do in practice) plus sentences of
their own. A deterministic canned judge (lr_eval.reward.scripted) answers in
process, so both pipelines see the same verdicts, statements and answer sizes.

Both use the same prompts and method settings (128-token retrieval chunks,
k = 5, 4096-token extraction chunks). What differs is the call pattern:
- reference: per response 4 calls + 1 per statement, the context re-embedded
  for every response, the completeness extraction shared per prompt;
- ours: the group of N responses shares the context embedding, the extraction,
  and one support call per distinct statement; identical calls are sent once.

Judge input tokens are counted with the chunking tokenizer on the messages
as sent. "Fresh" input tokens are those an ideal prefix cache (vLLM's
automatic prefix caching, 16-token blocks, or a provider's prompt cache)
would still have to process: our prompts put the static instructions and
examples first, and the group-shared data (question, extracted information)
before the per-response data. Printed: one table and a RESULT line.

    python benchmarks/reward_cost.py [--prompts 20] [--responses 10] [--phrasings 3]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lr_eval.judge import JudgeClient
from lr_eval.reward.chunking import load_tokenizer, token_spans
from lr_eval.reward.scorer import LongRewardScorer, RewardConfig
from lr_eval.reward.scripted import CannedJudge
from lr_eval.types import ChatRequest, ChatResult, Usage

PLACES = ["Aldmoor", "Brenholt", "Cressing", "Dunmere", "Elsworth", "Farrow", "Galton", "Hessle", "Ivybridge",
          "Jarrow", "Kestow", "Lindale", "Marlow", "Norham", "Otterby", "Penrith"]
THINGS = ["reservoir", "bridge", "library", "harbour", "railway", "school", "mill", "hospital", "market", "canal",
          "museum", "bakery", "tramline", "orchard", "quarry", "lighthouse"]
VERBS = [("opened", "was opened"), ("rebuilt", "was rebuilt"), ("closed", "was closed"), ("extended", "was extended"),
         ("sold", "was sold"), ("repaired", "was repaired")]
FILLER = ("council committee budget report season visitors record survey members officers plan review meeting "
          "weather river road village town county year month cost price share growth summer winter spring autumn "
          "local regional national office board trust company staff service public private project study").split()


@dataclass
class Fact:
    place: str
    thing: str
    verb: tuple[str, str]
    year: int
    amount: int

    def phrasing(self, i: int) -> str:
        who = f"the {self.thing} of {self.place}"
        return [f"In {self.year}, {who} {self.verb[1]} at a cost of {self.amount:,} pounds.",
                f"{who.capitalize()} {self.verb[1]} in {self.year} for {self.amount:,} pounds.",
                f"The council {self.verb[0]} {who} in {self.year}, spending {self.amount:,} pounds."][i % 3]


Workload = list[tuple[str, str, list[str]]]


def make_workload(prompts: int, responses: int, phrasings: int, seed: int, tok: Any) -> Workload:
    rng = random.Random(seed)
    out = []
    for p in range(prompts):
        target = rng.randint(8_000, 32_000)
        facts = [Fact(rng.choice(PLACES), rng.choice(THINGS), rng.choice(VERBS), rng.randint(1850, 2020),
                      rng.randint(10, 900) * 1000) for _ in range(40)]
        key = facts[:8]  # what the question is about
        paras: list[str] = []
        while True:
            sents = []
            for _ in range(rng.randint(4, 8)):
                if rng.random() < 0.3:
                    sents.append(rng.choice(facts).phrasing(rng.randrange(3)))
                else:
                    sents.append(" ".join(rng.choice(FILLER) for _ in range(rng.randint(8, 18))).capitalize() + ".")
            paras.append(" ".join(sents))
            if len(paras) % 20 == 0 and len(token_spans("\n\n".join(paras), tok)) >= target:
                break
        for f in key:  # every key fact is in the document
            paras.insert(rng.randrange(len(paras)), f.phrasing(0))
        context = "\n\n".join(paras)
        question = (f"What happened to the {key[0].thing} of {key[0].place} and the other projects the report "
                    f"covers, and what did they cost? (report {p})")
        resp = []
        for r in range(responses):
            sents = []
            for f in rng.sample(key, rng.randint(4, 7)):
                variant = rng.randrange(phrasings) if phrasings else 3 + r  # 3 + r: a phrasing of its own
                sents.append(f.phrasing(variant) if variant < 3 else
                             f"Response {r} notes that {f.thing} of {f.place} {f.verb[1]} in {f.year}.")
            sents.insert(rng.randrange(len(sents) + 1), f"Overall, sample {r} of report {p} covers these points.")
            resp.append(" ".join(sents))
        out.append((context, question, resp))
    return out


class CannedBackend:
    """The canned judge in process (no HTTP): both pipelines get identical answers, fast."""

    def __init__(self) -> None:
        self.model = "canned-judge"
        self.judge = CannedJudge()

    async def send(self, request: ChatRequest) -> ChatResult:
        body = {"messages": list(request.messages)}
        content = str(self.judge(body))
        return ChatResult(content=content, usage=Usage(0, len(content.split())))

    async def aclose(self) -> None:
        return None


class AskedClient(JudgeClient):
    """Records every request asked, whether or not it reaches the judge."""

    def __init__(self, *a: Any, **kw: Any):
        super().__init__(*a, **kw)
        self.asked: list[ChatRequest] = []

    async def chat(self, request: ChatRequest) -> ChatResult:
        self.asked.append(request)
        return await super().chat(request)


class CountingEmbedder:
    """Bag-of-words vectors; counts the tokens it was given, as a metered embedding API would."""

    name = "counting-bow"

    def __init__(self, tok: Any):
        self.tok = tok
        self.tokens = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_counted(texts)[0]

    def embed_counted(self, texts: list[str]) -> tuple[np.ndarray, int]:
        out = np.zeros((len(texts), 256), dtype=np.float32)
        n = 0
        for i, t in enumerate(texts):
            n += len(token_spans(t, self.tok))
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest()[:6], 16) % 256] += 1.0
        self.tokens += n
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0), n


class TokenCounter:
    """Input tokens of requests, and the part an ideal block-level prefix cache would still compute."""

    BLOCK = 16

    def __init__(self, tok: Any):
        self.tok = tok
        self._memo: dict[str, list[int]] = {}

    def ids(self, request: ChatRequest) -> list[int]:
        text = "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in request.messages)
        if text not in self._memo:
            enc = self.tok(text, add_special_tokens=False)["input_ids"]
            self._memo[text] = list(enc)
        return self._memo[text]

    def count(self, requests: Iterable[ChatRequest]) -> tuple[int, int]:
        """(all input tokens, tokens not served from a prefix cache), in arrival order."""
        seen: set[int] = set()
        total = fresh = 0
        for r in requests:
            ids = self.ids(r)
            total += len(ids)
            h = 0
            for b in range(0, len(ids), self.BLOCK):
                blk = tuple(ids[b:b + self.BLOCK])
                h = hash((h, blk))
                if len(blk) == self.BLOCK and h in seen:
                    continue
                seen.add(h)
                fresh += len(blk)
        return total, fresh


def run(workload: Workload, tok: Any, reference: bool) -> dict[str, Any]:
    from lr_eval.cache import ResponseCache
    import tempfile
    from pathlib import Path

    cfg = RewardConfig(embedder="bm25", language="en", judge_window=None)
    tmp = Path(tempfile.mkdtemp(prefix="reward-cost-"))
    client = AskedClient(CannedBackend(), cache=ResponseCache(tmp / "c.sqlite"), concurrency=64, show_progress=False)
    emb = CountingEmbedder(tok)
    scorer = LongRewardScorer(client, cfg, embedder=emb, tokenizer=tok)
    if reference:
        # One group per response: nothing shared but the extraction (counted once per prompt below).
        groups = [(c, q, [r]) for c, q, rs in workload for r in rs]
    else:
        groups = [(c, q, rs) for c, q, rs in workload]
    t = time.perf_counter()
    results = [s for g in scorer.score_groups(groups, max_in_flight=8) for s in g]
    elapsed = time.perf_counter() - t
    if reference:
        seen_extract: set[str] = set()
        requests = []
        for r in client.asked:
            if r.template_id.startswith("longreward.extract"):
                key = r.cache_key("x")
                if key in seen_extract:
                    continue
                seen_extract.add(key)
            requests.append(r)
    else:
        uniq: dict[str, ChatRequest] = {}
        for r in client.asked:  # what reaches the judge: identical requests are answered once
            uniq.setdefault(r.cache_key("x"), r)
        requests = list(uniq.values())
    total, fresh = TokenCounter(tok).count(requests)
    n = len(results)
    return {"responses": n, "calls": len(requests) / n, "input": total / n, "fresh": fresh / n,
            "embed": emb.tokens / n, "scored": sum(r.reward is not None for r in results), "seconds": elapsed,
            "statements": sum(len(r.audit.get("faithfulness", {}).get("statements", [])) for r in results) / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--responses", type=int, default=10)
    ap.add_argument("--phrasings", type=int, default=3,
                    help="phrasings per fact (fewer: more identical statements across responses; 0: none shared)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    tok = load_tokenizer(None)
    t0 = time.perf_counter()
    work = make_workload(args.prompts, args.responses, args.phrasings, args.seed, tok)
    ctx_tokens = [len(token_spans(c, tok)) for c, _, _ in work]
    print(f"workload: {args.prompts} prompts x {args.responses} responses, contexts {min(ctx_tokens):,}-"
          f"{max(ctx_tokens):,} tokens (mean {int(np.mean(ctx_tokens)):,}), built in {time.perf_counter() - t0:.1f} s")
    ref = run(work, tok, reference=True)
    ours = run(work, tok, reference=False)
    print(f"statements per response: {ours['statements']:.1f}; scored responses: ours {ours['scored']}, "
          f"reference {ref['scored']} of {ours['responses']}")
    rows = [("judge calls", "calls"), ("judge input tokens", "input"),
            ("judge input tokens not in a prefix cache", "fresh"), ("embedding tokens", "embed")]
    print(f"\n{'per scored response':44} {'reference':>12} {'ours':>12} {'ratio':>8}")
    for label, key in rows:
        print(f"{label:44} {ref[key]:>12,.1f} {ours[key]:>12,.1f} {ours[key] / ref[key]:>8.3f}")
    print("(the 'not in a prefix cache' row gives both patterns the same ideal prefix cache; with it, identical\n"
          " requests cost nothing, so the group sharing saves calls and raw tokens but few fresh tokens)")
    r_calls = ours["calls"] / ref["calls"]
    r_in = ours["input"] / ref["input"]
    r_fresh = ours["fresh"] / ref["input"]
    r_both = ours["fresh"] / ref["fresh"]
    r_emb = ours["embed"] / ref["embed"]
    ok = r_fresh <= 0.6
    print(f"\nRESULT calls={r_calls:.3f}x input_tokens={r_in:.3f}x "
          f"fresh_input_tokens_vs_reference={r_fresh:.3f}x fresh_vs_reference_fresh={r_both:.3f}x "
          f"embedding_tokens={r_emb:.3f}x target(fresh_vs_reference<=0.6x)={'met' if ok else 'MISSED'} "
          f"target(raw_input<=0.6x)={'met' if r_in <= 0.6 else 'MISSED'} "
          f"[{args.prompts}x{args.responses}, phrasings={args.phrasings}, seed={args.seed}]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
