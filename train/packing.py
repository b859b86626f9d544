"""Prefix-shared packing of one preference pair: prompt + chosen + rejected in one sequence.

Why: in long-context DPO the prompt (8k-64k tokens) dwarfs the two responses (0.2k-1k), so
computing it once instead of twice nearly halves the work.  The rejected tokens attend to the
prompt but not to the chosen tokens, and their positions restart right after the prompt, so every
token sees exactly the context it would see in its own unshared sequence.

Layout of the packed sequence (T = P + C + R):

    index     0 .. P-1 | P .. P+C-1 | P+C .. P+C+R-1
    segment   prompt   | chosen     | rejected
    position  0 .. P-1 | P .. P+C-1 | P .. P+R-1

Attention rule (``allowed(q, k)``): ``k <= q`` and (``seg[k] == prompt`` or ``seg[k] == seg[q]``).
The dense mask (CPU reference), the FlexAttention block mask and the split-SDPA kernel in
``attention.py`` all implement this one rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PROMPT, CHOSEN, REJECTED = 0, 1, 2


@dataclass(frozen=True)
class PackedPair:
    """One prefix-shared pair: token ids, positions and the lengths of its three segments."""

    input_ids: torch.Tensor  # [T] int64
    position_ids: torch.Tensor  # [T] int64
    prompt_len: int
    chosen_len: int
    rejected_len: int

    @property
    def seq_len(self) -> int:
        return self.prompt_len + self.chosen_len + self.rejected_len

    @property
    def layout(self) -> tuple[int, int, int]:
        """(P, C, R): what the split-SDPA attention needs to know about the sequence."""
        return (self.prompt_len, self.chosen_len, self.rejected_len)

    @property
    def unshared_tokens(self) -> int:
        """Tokens the naive two-sequence computation would process: 2P + C + R."""
        return 2 * self.prompt_len + self.chosen_len + self.rejected_len

    def segment_ids(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Segment id per token (PROMPT / CHOSEN / REJECTED)."""
        p, c, r = self.layout
        return torch.cat(
            [
                torch.full((p,), PROMPT, dtype=torch.int32, device=device),
                torch.full((c,), CHOSEN, dtype=torch.int32, device=device),
                torch.full((r,), REJECTED, dtype=torch.int32, device=device),
            ]
        )

    def prediction_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of the hidden states that predict the chosen and the rejected tokens.

        Token i of a response is predicted by the hidden state of the token before it *in its own
        sequence*: the first token of either response is predicted from the last prompt position,
        which both responses share.
        """
        p, c, r = self.layout
        last_prompt = torch.tensor([p - 1])
        chosen_rows = torch.cat([last_prompt, torch.arange(p, p + c - 1)])
        rejected_rows = torch.cat([last_prompt, torch.arange(p + c, p + c + r - 1)])
        return chosen_rows, rejected_rows

    def targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids of the chosen and the rejected response (the log-prob targets)."""
        p, c, _ = self.layout
        return self.input_ids[p : p + c], self.input_ids[p + c :]

    def attended_pairs(self) -> int:
        """Number of (query, key) pairs the attention rule allows: the attention cost of the pair."""
        p, c, r = self.layout
        return p * (p + 1) // 2 + c * p + c * (c + 1) // 2 + r * p + r * (r + 1) // 2


def pack_pair(prompt_ids: list[int], chosen_ids: list[int], rejected_ids: list[int]) -> PackedPair:
    """Build the prefix-shared sequence of one pair.

    The prompt must be non-empty: the first response token is predicted from the last prompt token.
    """
    if not prompt_ids:
        raise ValueError("the prompt is empty: the first response token has nothing to be predicted from")
    if not chosen_ids or not rejected_ids:
        raise ValueError("chosen and rejected responses must each have at least one token")
    p, c, r = len(prompt_ids), len(chosen_ids), len(rejected_ids)
    input_ids = torch.tensor(list(prompt_ids) + list(chosen_ids) + list(rejected_ids), dtype=torch.long)
    position_ids = torch.cat([torch.arange(p + c), torch.arange(p, p + r)])
    return PackedPair(input_ids, position_ids, p, c, r)


def truncate_prompt_middle(prompt_ids: list[int], budget: int) -> list[int]:
    """Keep the first and last tokens of the prompt, dropping the middle, so that it fits ``budget``.

    Why the middle: long-context prompts put instructions at the start and the question plus the
    chat template's generation header at the end; the middle is the least harmful part to lose.
    The head gets the extra token when ``budget`` is odd.
    """
    if budget < 0:
        raise ValueError(f"negative prompt budget {budget}")
    if len(prompt_ids) <= budget:
        return list(prompt_ids)
    head = (budget + 1) // 2
    tail = budget - head
    return list(prompt_ids[:head]) + (list(prompt_ids[-tail:]) if tail else [])


def fit_pair(
    prompt_ids: list[int], chosen_ids: list[int], rejected_ids: list[int], max_length: int | None
) -> list[int] | None:
    """Prompt truncated (middle) so that each unshared sequence P + max(C, R) fits ``max_length``.

    Completions are never truncated: returns None when a response alone leaves no room for at
    least one prompt token (the caller drops and counts the pair).
    """
    if max_length is None:
        return list(prompt_ids)
    budget = max_length - max(len(chosen_ids), len(rejected_ids))
    if budget < 1:
        return None
    return truncate_prompt_middle(prompt_ids, budget)


def allowed_mask(pair: PackedPair, device: torch.device | str | None = None) -> torch.Tensor:
    """Dense [T, T] boolean mask of the attention rule (True = may attend). For small T only."""
    seg = pair.segment_ids(device)
    idx = torch.arange(pair.seq_len, device=device)
    causal = idx[None, :] <= idx[:, None]
    same_or_prompt = (seg[None, :] == PROMPT) | (seg[None, :] == seg[:, None])
    return causal & same_or_prompt


def dense_attention_mask(
    pair: PackedPair, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """4D mask [1, 1, T, T] for transformers' SDPA/eager attention.

    Boolean (True = attend) when ``dtype`` is None, otherwise additive (0 / dtype min).  It costs
    T^2 memory, so it is the CPU/test path; long sequences use split SDPA or flex attention.
    """
    allowed = allowed_mask(pair, device)
    if dtype is None:
        return allowed[None, None]
    additive = torch.zeros(allowed.shape, dtype=dtype, device=device)
    additive.masked_fill_(~allowed, torch.finfo(dtype).min)
    return additive[None, None]


def flex_block_mask(pair: PackedPair, device: torch.device | str, block_size: int = 128):
    """FlexAttention ``BlockMask`` of the attention rule (sparse: O(T^2 / block^2) memory)."""
    from torch.nn.attention.flex_attention import create_block_mask

    seg = pair.segment_ids(device)

    def mask_mod(b, h, q_idx, kv_idx):  # noqa: ARG001 - signature fixed by FlexAttention
        return (kv_idx <= q_idx) & ((seg[kv_idx] == PROMPT) | (seg[kv_idx] == seg[q_idx]))

    t = pair.seq_len
    # Uncompiled, create_block_mask evaluates the mask on the dense T x T grid; compiled it does not.
    compile_mask = torch.device(device).type == "cuda"
    return create_block_mask(mask_mod, None, None, t, t, device=device, BLOCK_SIZE=block_size, _compile=compile_mask)
