"""Token log-probabilities of the completion tokens only, computed in chunks through the LM head.

Why: the full [sequence, vocabulary] logits of a 64k sequence with a 128k vocabulary would be
32 GiB in bf16 (and more in float32).  Only the C + R completion tokens need log-probs, so we
gather their predicting hidden states first and push them through the LM head a chunk at a time;
each chunk is checkpointed, so the backward recomputes its logits instead of keeping them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def _chunk_logps(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    softcap: float | None,
) -> torch.Tensor:
    logits = F.linear(hidden, weight, bias).float()
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    picked = logits.gather(-1, targets[:, None]).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def token_logps(
    hidden: torch.Tensor,
    lm_head: torch.nn.Module,
    targets: torch.Tensor,
    chunk_size: int = 1024,
    softcap: float | None = None,
) -> torch.Tensor:
    """log p(target_i | hidden_i) for hidden [N, d] and targets [N]; float32 result [N].

    The logits are built in the head's dtype (bf16 matmul, fp32 accumulate, as in the model's own
    forward) and the softmax is done in float32.
    """
    if hidden.shape[0] != targets.shape[0]:
        raise ValueError(f"{hidden.shape[0]} hidden rows for {targets.shape[0]} targets")
    weight = lm_head.weight
    bias = getattr(lm_head, "bias", None)
    hidden = hidden.to(weight.dtype) if not torch.is_autocast_enabled(hidden.device.type) else hidden
    pieces = []
    for start in range(0, hidden.shape[0], chunk_size):
        h = hidden[start : start + chunk_size]
        t = targets[start : start + chunk_size]
        if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad):
            pieces.append(checkpoint(_chunk_logps, h, weight, bias, t, softcap, use_reentrant=False))
        else:
            pieces.append(_chunk_logps(h, weight, bias, t, softcap))
    return torch.cat(pieces)


def output_softcap(config) -> float | None:
    """Final-logit soft-capping of the architecture (Gemma 2 style), if it has one."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    cap = getattr(text_config, "final_logit_softcapping", None)
    return float(cap) if cap else None
