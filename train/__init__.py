"""lr_eval.train: see README, layout.

DPO training with prefix sharing.  Public entry points (imported lazily: torch is heavy):
``DPOConfig`` and ``run_dpo(config)`` from ``lr_eval.train.trainer``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DPOConfig", "DPOTrainer", "run_dpo"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
