"""The LongReward step of `lr-eval demo`: the four scores of the demo answer, with what stands behind them.

Registered as entry point `lr_eval.demo: "2-longreward"`. The embedded 135M
judge's answers are held to each stage's answer format (constrained decoding,
`--structured auto`), so every dimension gets a number; those numbers say
little about the answer. With `--structured off` the same judge writes free
text and the dimensions come out unscored, counted, never a default.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from lr_eval.progress import console

from .scorer import DIMENSIONS, LongRewardScorer, RewardConfig

# A small judge has a small window and writes slowly (a few tokens a second on a shared CPU): short rationales,
# few statements. Under the answer formats these budgets bound the rationale, so the verdict always fits.
DEMO_MAX_TOKENS = {"helpfulness": 64, "logicality": 64, "statements": 200, "support": 64, "support_batch": 180,
                   "extract": 200, "completeness": 64}


def demo_config(judge: Any) -> RewardConfig:
    """Method defaults, with the output budgets and window of a local judge when the judge is one."""
    backend = getattr(judge, "backend", None)
    window = getattr(backend, "max_input_tokens", None)
    local = type(backend).__name__ in ("TransformersBackend", "VLLMBackend")
    if not local:
        return RewardConfig()
    return RewardConfig(max_tokens=dict(DEMO_MAX_TOKENS), judge_window=window or 8192, max_statements=4)


def score_answer(scorer: LongRewardScorer, sample: dict[str, Any], answer: str) -> Any:
    """The answer's LongReward score, judged on an event loop of its own."""
    return scorer.client.run_coroutine(lambda: scorer.score_group(sample["context"], sample["question"], [answer]))[0]


def step(ctx: Any) -> None:
    """Score `ctx.answer` to `ctx.sample`'s question and print the four dimensions and the reward."""
    sample = ctx.sample
    cfg = demo_config(ctx.judge)
    scorer = LongRewardScorer(ctx.judge, cfg)
    try:
        result = score_answer(scorer, sample, ctx.answer)
    except (ImportError, OSError) as e:  # the local embedder could not load: fall back to BM25 retrieval
        console.print(f"[yellow]local embedder unavailable ({e}); retrieving with BM25")
        cfg.embedder = "bm25"
        scorer = LongRewardScorer(ctx.judge, cfg, embedder=None)
        result = score_answer(scorer, sample, ctx.answer)
    ctx.results["longreward"] = result.to_dict()

    t = Table(title="LongReward (0-10)")
    t.add_column("dimension")
    t.add_column("score", justify="right")
    t.add_column("basis / reason")
    audit = result.audit
    for dim in DIMENSIONS:
        value = getattr(result, dim)
        basis = result.unscored.get(dim, "")
        if value is not None and dim == "faithfulness":
            rows = audit.get("faithfulness", {}).get("statements", [])
            basis = f"{audit['faithfulness'].get('judged', 0)} of {len(rows)} statements judged"
        elif value is not None and dim == "completeness":
            parts = audit.get("completeness", {}).get("information", [])
            basis = f"information from {sum(p['status'] == 'relevant' for p in parts)} of {len(parts)} parts"
        t.add_row(dim, "-" if value is None else f"{value:.1f}", escape(basis))
    t.add_row("[bold]reward", "-" if result.reward is None else f"[bold]{result.reward:.2f}",
              "mean of " + (", ".join(result.averaged) or "nothing: no dimension scored"))
    console.print(t)
    for row in audit.get("faithfulness", {}).get("statements", [])[:4]:
        console.print(f"  statement: {escape(row['statement'])}\n    passages {row['chunks']} → "
                      f"{row['verdict'] or 'unscored: ' + escape(str(row.get('unscored')))}")
    if result.flags:
        console.print("flags: " + ", ".join(result.flags))
    stats = [st for st in scorer.parse_stats.values() if st.scored or st.unscored]
    judged = sum(st.scored + sum(st.unscored.values()) for st in stats)
    console.print(f"verdicts decoded under their answer format: {sum(st.constrained for st in stats)} of {judged}")
    console.print(f"judge calls for this answer: {result.usage.get('calls', 0)} "
                  f"(+{result.usage.get('group', {}).get('calls', 0)} shared per prompt)")
