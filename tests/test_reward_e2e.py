"""End to end on real models, offline: the embedded SmolLM2-135M judge and the local MiniLM embedder
score a real-text answer. The 135M judge scores badly; the test asks that the whole pipeline runs and
that every dimension is either a score in range or unscored with its reason, and counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lr_eval.config import JudgeConfig, build_client
from lr_eval.demo import load_sample
from lr_eval.reward.scorer import DIMENSIONS, LongRewardScorer, RewardConfig

pytestmark = pytest.mark.slow

ANSWER = ("The emergency connection at Cressing was open for 47 days in 2023, compared with 19 days in 2022, "
          "because a dry spring left the reservoir low. The board plans to study a second reservoir north of "
          "Brenholt, since the regional utility may limit supplies in dry years.")


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """On a shared 2-core machine, torch's spinning worker threads slow generation several-fold."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_embedded_judge_and_local_embedder_score_a_real_answer(tmp_path: Path, one_torch_thread: None,
                                                              embedded_model: str) -> None:
    sample = load_sample()
    client = build_client(JudgeConfig(backend="embedded", cache=str(tmp_path / "c.sqlite")), show_progress=False)
    # Short answers, no re-asks, one statement: about six calls of the 135M model on CPU.
    small = {"helpfulness": 32, "logicality": 32, "statements": 48, "support": 24, "extract": 48, "completeness": 32}
    cfg = RewardConfig(max_tokens=small, judge_window=8192, max_statements=1, reasks=0, embedder="local")
    scorer = LongRewardScorer(client, cfg)
    [res] = scorer.score_groups([(sample["context"], sample["question"], [ANSWER])])[0]

    assert res.audit["language"] == "en" and res.audit["retrieval_chunks"] > 5
    for dim in DIMENSIONS:
        value = getattr(res, dim)
        assert (value is not None and 0 <= value <= 10) or res.unscored.get(dim), dim
    assert set(res.averaged) == {d for d in DIMENSIONS if getattr(res, d) is not None}
    assert (res.reward is None) == (not res.averaged)
    # every verdict asked was counted as scored or unscored, with reasons
    asked = sum(s.scored + sum(s.unscored.values()) for s in scorer.parse_stats.values())
    assert asked == res.usage["calls"] + res.usage["group"]["calls"] - sum(
        s.reasked for s in scorer.parse_stats.values())
    assert res.usage["calls"] >= 3 and client.meter.paid == res.usage["calls"] + res.usage["group"]["calls"]
    assert res.audit["helpfulness"]["rationale"]  # the judge really answered
    if res.faithfulness is not None or "statements" in res.audit.get("faithfulness", {}):
        for row in res.audit["faithfulness"].get("statements", []):
            assert len(row["chunks"]) == 5
    if res.audit["faithfulness"].get("statements"):
        assert scorer.embedded_tokens > 0  # the local embedder ran on the context (once) and the statement
    print({d: getattr(res, d) for d in DIMENSIONS}, res.reward, res.unscored, res.flags)
