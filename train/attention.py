"""Split-SDPA attention for prefix-shared pairs, plugged into transformers' AttentionInterface.

Why not one masked SDPA call: a custom T x T mask rules out the flash kernels and costs T^2 memory
(4 GiB of booleans at 64k).  The attention rule of ``packing.py`` splits exactly into two
kernel-friendly calls per layer:

1. prompt + chosen rows: ordinary causal attention over the first P + C tokens (flash, is_causal);
2. rejected rows: queries R, keys [prompt; rejected] (P + R), causal aligned to the *bottom right*
   (``causal_lower_right``): rejected token i sees the whole prompt and rejected tokens 0..i.

Both are exact (no approximation); on CUDA both dispatch to flash attention with backward, on CPU
to the math kernel, so the CPU tests exercise this same code.  Calls without ``prefix_layout`` (a
normal forward: evaluation, TRL) fall through to transformers' own SDPA path, so a model that uses
this implementation behaves like ``attn_implementation="sdpa"`` everywhere else.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

PREFIX_SDPA = "lr_prefix_sdpa"
_registered = False


def prefix_sdpa_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    prefix_layout: tuple[int, int, int] | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Attention for query/key/value [B, heads, T, head_dim]; returns [B, T, heads, head_dim]."""
    if prefix_layout is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if attention_mask is not None:
        # A mask here means transformers built one (e.g. padding); the packed path has no padding.
        raise ValueError("prefix-shared attention takes no attention mask (the layout defines it)")
    for feature in ("sliding_window", "softcap", "s_aux"):
        if kwargs.get(feature) is not None:
            raise NotImplementedError(f"prefix-shared attention does not implement {feature} (full attention only)")
    p, c, r = prefix_layout
    t = query.shape[2]
    if p + c + r != t or min(p, c, r) < 1:
        raise ValueError(f"prefix layout {prefix_layout} does not match a sequence of {t} tokens")
    dropout_p = dropout if module.training else 0.0
    n_rep = query.shape[1] // key.shape[1]

    head = F.scaled_dot_product_attention(
        query[:, :, : p + c],
        key[:, :, : p + c],
        value[:, :, : p + c],
        dropout_p=dropout_p,
        is_causal=True,
        scale=scaling,
        enable_gqa=n_rep > 1,
    )
    # The lower-right causal bias dispatches to the flash op directly, which needs equal head counts.
    from transformers.integrations.sdpa_attention import repeat_kv

    rej_key = repeat_kv(torch.cat([key[:, :, :p], key[:, :, p + c :]], dim=2), n_rep)
    rej_value = repeat_kv(torch.cat([value[:, :, :p], value[:, :, p + c :]], dim=2), n_rep)
    tail = F.scaled_dot_product_attention(
        query[:, :, p + c :],
        rej_key,
        rej_value,
        attn_mask=causal_lower_right(r, p + r),
        dropout_p=dropout_p,
        scale=scaling,
    )
    out = torch.cat([head, tail], dim=2)
    return out.transpose(1, 2).contiguous(), None


def register_prefix_attention() -> str:
    """Register the split-SDPA attention (and SDPA's mask builder) under ``PREFIX_SDPA``; idempotent."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        AttentionInterface.register(PREFIX_SDPA, prefix_sdpa_attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(PREFIX_SDPA, sdpa_mask)
        _registered = True
    return PREFIX_SDPA
