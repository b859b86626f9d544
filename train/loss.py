"""DPO (sigmoid) loss plus an NLL term on the chosen response: L = L_DPO + λ·CE(chosen).

Conventions follow TRL 1.16's DPOTrainer with ``loss_type=["sigmoid", "sft"]`` and
``loss_weights=[1, λ]`` so the two can be compared number for number:

* sequence log-probs are *sums* over completion tokens (no length normalisation);
* L_DPO = mean over pairs of -log σ(β·[(π_c - ref_c) - (π_r - ref_r)]);
* the NLL ("sft") term is the mean of -log p over all chosen tokens of the batch (tokens pooled
  across the pairs of the batch, not averaged per pair);
* rewards are β·(π - ref), detached; accuracy counts chosen reward > rejected reward (strict).

Our trainer feeds one pair per forward and accumulates, so its per-step loss is the mean over
pairs of (L_DPO,i + λ·NLL_i): TRL's value with ``per_device_train_batch_size=1`` plus gradient
accumulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class DPOLossOutput:
    loss: torch.Tensor  # scalar, with grad
    dpo_loss: torch.Tensor  # scalar, with grad
    nll_loss: torch.Tensor  # scalar, with grad
    chosen_rewards: torch.Tensor  # [B], detached
    rejected_rewards: torch.Tensor  # [B], detached

    @property
    def margins(self) -> torch.Tensor:
        return self.chosen_rewards - self.rejected_rewards

    @property
    def accuracy(self) -> torch.Tensor:
        return (self.chosen_rewards > self.rejected_rewards).float()


def dpo_nll_loss(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    chosen_nll_sum: torch.Tensor,
    chosen_tokens: torch.Tensor | int,
    beta: float = 0.15,
    nll_weight: float = 0.1,
) -> DPOLossOutput:
    """Loss of a batch of B pairs.

    ``chosen_logps`` etc. are [B] summed log-probs; ``chosen_nll_sum`` is the [B] sum of -log p over
    each chosen response, ``chosen_tokens`` the number of chosen tokens (per pair [B] or total).
    """
    chosen_logratios = chosen_logps - ref_chosen_logps.to(chosen_logps)
    rejected_logratios = rejected_logps - ref_rejected_logps.to(rejected_logps)
    dpo = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios)).mean()
    total_tokens = chosen_tokens.sum() if isinstance(chosen_tokens, torch.Tensor) else chosen_tokens
    nll = chosen_nll_sum.sum() / total_tokens
    return DPOLossOutput(
        loss=dpo + nll_weight * nll,
        dpo_loss=dpo,
        nll_loss=nll,
        chosen_rewards=(beta * chosen_logratios).detach(),
        rejected_rewards=(beta * rejected_logratios).detach(),
    )


def pair_loss(
    chosen_token_logps: torch.Tensor,
    rejected_token_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor | float,
    ref_rejected_logps: torch.Tensor | float,
    beta: float = 0.15,
    nll_weight: float = 0.1,
) -> DPOLossOutput:
    """Loss of one pair from its per-token policy log-probs and summed reference log-probs."""
    ref_c = torch.as_tensor(ref_chosen_logps, dtype=torch.float32).reshape(1)
    ref_r = torch.as_tensor(ref_rejected_logps, dtype=torch.float32).reshape(1)
    return dpo_nll_loss(
        chosen_token_logps.sum().reshape(1),
        rejected_token_logps.sum().reshape(1),
        ref_c,
        ref_r,
        (-chosen_token_logps.sum()).reshape(1),
        chosen_token_logps.numel(),
        beta,
        nll_weight,
    )
