"""Model FLOPs and MFU, with the convention stated so numbers can be compared.

Convention (as in specs/dpo.md): a forward costs 2·N FLOPs per token for the N matmul parameters
of the decoder layers, plus 2·V·d per token that goes through the LM head, plus causal attention
4·L·d_attn per attended (query, key) pair (QKᵀ and AV).  Training a token costs 3× its forward
(backward = 2× forward) whether or not the weights are frozen (LoRA), and activation-checkpoint
recomputation is not counted: these are *model* FLOPs, not hardware FLOPs.  MFU = model FLOPs /
(seconds × stated peak); the default peak is the 790 TFLOP/s bf16 dense matmul rate measured on
an H100 in the spec.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .dpo_config import DEFAULT_PEAK_TFLOPS


@dataclass(frozen=True)
class ModelShape:
    n_layers: int
    attn_dim: int  # num_attention_heads * head_dim
    hidden: int
    vocab: int
    layer_matmul_params: int  # all decoder-layer matmul weights (LoRA adapters included)

    @classmethod
    def from_model(cls, model: torch.nn.Module) -> ModelShape:
        """Read the shape off a (possibly PEFT-wrapped) transformers causal LM."""
        from .modeling import base_model_of

        base = base_model_of(model)
        cfg = base.config.get_text_config()
        decoder = base.get_decoder()
        layers = getattr(decoder, "layers", None)
        if layers is None:
            raise ValueError(f"{type(decoder).__name__} has no .layers: cannot count matmul parameters")
        params = sum(p.numel() for layer in layers for p in layer.parameters() if p.dim() >= 2)
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        return cls(
            n_layers=len(layers),
            attn_dim=cfg.num_attention_heads * head_dim,
            hidden=cfg.hidden_size,
            vocab=cfg.vocab_size,
            layer_matmul_params=params,
        )


def forward_flops(shape: ModelShape, tokens: int, head_tokens: int, attended_pairs: int) -> float:
    """FLOPs of one forward: ``tokens`` through the layers, ``head_tokens`` through the LM head."""
    return (
        2.0 * shape.layer_matmul_params * tokens
        + 2.0 * shape.vocab * shape.hidden * head_tokens
        + 4.0 * shape.n_layers * shape.attn_dim * attended_pairs
    )


def causal_pairs(t: int) -> int:
    return t * (t + 1) // 2


def packed_pair_flops(
    shape: ModelShape, prompt: int, chosen: int, rejected: int, reference_forward: bool
) -> float:
    """Model FLOPs of one prefix-shared pair: policy train (3× forward) + optional reference forward."""
    t = prompt + chosen + rejected
    pairs = causal_pairs(prompt) + chosen * prompt + causal_pairs(chosen) + rejected * prompt + causal_pairs(rejected)
    fwd = forward_flops(shape, t, chosen + rejected, pairs)
    return fwd * (4.0 if reference_forward else 3.0)


def unshared_pair_flops(
    shape: ModelShape, prompt: int, chosen: int, rejected: int, reference_forward: bool, head_all_tokens: bool
) -> float:
    """Model FLOPs of the naive computation (two sequences P+C and P+R), as TRL does it.

    ``head_all_tokens``: the LM head runs on every position (TRL) rather than on completions only.
    """
    total = 0.0
    for resp in (chosen, rejected):
        t = prompt + resp
        head = t if head_all_tokens else resp
        total += forward_flops(shape, t, head, causal_pairs(t))
    return total * (4.0 if reference_forward else 3.0)


def mfu(flops: float, seconds: float, peak_tflops: float = DEFAULT_PEAK_TFLOPS) -> float:
    return flops / (seconds * peak_tflops * 1e12) if seconds > 0 else 0.0
