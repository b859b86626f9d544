"""Helpers shared by the DPO tests (the one-thread torch fixture is ``torch_one_thread`` in conftest.py)."""

from __future__ import annotations


def nonzero_lora_config():
    """A small LoRA adapter over every linear layer, initialised non-zero (init_lora_weights=False):
    the policy differs from the reference, so the DPO term is not log 2."""
    from peft import LoraConfig

    return LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
