"""lr_eval.reward: see README, layout.

LongReward scoring. Public entry points (imported lazily: the scorer pulls in the judge client, and
retrieval pulls in numpy / an embedder): ``LongRewardScorer``, ``RewardConfig``, ``ResponseScore``,
``combine`` and ``DIMENSIONS`` from ``lr_eval.reward.scorer``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DIMENSIONS", "LongRewardScorer", "ResponseScore", "RewardConfig", "combine"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import scorer

        return getattr(scorer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
