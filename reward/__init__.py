"""lr_eval.reward: see README, layout.

LongReward scoring. The API that tasks and train call (imported lazily: the scorer pulls in the judge
client, and retrieval pulls in numpy / an embedder):

* ``RewardConfig`` (``lr_eval.reward.settings``; ``RewardSettings`` is the same class): the method's settings,
  from flags, lm-eval metadata or TOML;
* ``build_scorer(config, judge)`` (``lr_eval.reward.engine``): the ``LongRewardScorer`` for them and a ``JudgeConfig``;
* ``score_file(settings, judge, input_path, output)`` (``lr_eval.reward.engine``): ``lr-eval score`` as a
  function, over the streaming, resumable engine that ``lr-train score`` uses too;
* ``ResponseScore``, ``DIMENSIONS``, ``score_results`` (``lr_eval.reward.records``): the score record;
* ``LongRewardScorer``, ``combine`` (``lr_eval.reward.scorer``): the method itself.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "RewardSettings": "settings", "build_scorer": "engine", "score_file": "engine",
    "ResponseScore": "records", "DIMENSIONS": "records", "SCORE_KEYS": "records", "score_results": "records",
    "RewardConfig": "settings", "LongRewardScorer": "scorer", "combine": "scorer",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
