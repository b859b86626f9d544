"""Prefix sharing is exact: packed loss and gradients equal two separate sequences (float32, CPU)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

import torch.nn.functional as F  # noqa: E402
from dpo_fixtures import nonzero_lora_config  # noqa: E402
from peft import get_peft_model  # noqa: E402

from lr_eval.train.attention import prefix_sdpa_attention  # noqa: E402
from lr_eval.train.loss import dpo_nll_loss, pair_loss  # noqa: E402
from lr_eval.train.modeling import PackedPairModel  # noqa: E402
from lr_eval.train.packing import (  # noqa: E402
    PackedPair,
    allowed_mask,
    dense_attention_mask,
    fit_pair,
    flex_block_mask,
    pack_pair,
    truncate_prompt_middle,
)
from lr_eval.testing.tiny import tiny_llama  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")

TOL = 1e-5
VOCAB = 96
BETA, LAM = 0.15, 0.1


def _ids(n: int, seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, VOCAB, (n,), generator=g).tolist()


PROMPT, CHOSEN, REJECTED = _ids(13, 1), _ids(6, 2), _ids(9, 3)


def unshared_token_logps(model, prompt: list[int], completion: list[int]) -> torch.Tensor:
    """The naive way: one full sequence per response, full logits, log-softmax."""
    ids = torch.tensor([prompt + completion])
    logits = model(input_ids=ids).logits[0].float()
    logp = logits.log_softmax(-1)
    p = len(prompt)
    return logp[p - 1 : -1].gather(-1, ids[0, p:, None]).squeeze(-1)


def unshared_loss_and_grads(model, ref_c: torch.Tensor, ref_r: torch.Tensor):
    """PROMPT + CHOSEN / REJECTED the naive way: (chosen and rejected token log-probs, loss, gradients);
    the model's gradients are cleared afterwards."""
    c_u = unshared_token_logps(model, PROMPT, CHOSEN)
    r_u = unshared_token_logps(model, PROMPT, REJECTED)
    out = pair_loss(c_u, r_u, ref_c, ref_r, BETA, LAM)
    out.loss.backward()
    g_u = grads(model)
    model.zero_grad(set_to_none=True)
    return c_u, r_u, out, g_u


def lora_model(seed: int = 0):
    model = tiny_llama(VOCAB, seed=seed)
    torch.manual_seed(seed + 1)
    return get_peft_model(model, nonzero_lora_config())


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys() and a
    return max((a[k] - b[k]).abs().max().item() for k in a)


# -- layout and masks --------------------------------------------------------------------------

def test_layout_positions_and_prediction_rows() -> None:
    pair = pack_pair([10, 11, 12], [20, 21], [30, 31, 32])
    assert pair.input_ids.tolist() == [10, 11, 12, 20, 21, 30, 31, 32]
    assert pair.position_ids.tolist() == [0, 1, 2, 3, 4, 3, 4, 5]
    chosen_rows, rejected_rows = pair.prediction_rows()
    assert chosen_rows.tolist() == [2, 3]  # first response token predicted from the last prompt token
    assert rejected_rows.tolist() == [2, 5, 6]
    chosen_t, rejected_t = pair.targets()
    assert chosen_t.tolist() == [20, 21] and rejected_t.tolist() == [30, 31, 32]
    assert int(allowed_mask(pair).sum()) == pair.attended_pairs()
    with pytest.raises(ValueError):
        pack_pair([], [1], [2])


def test_mask_rule_rejected_never_sees_chosen() -> None:
    pair = pack_pair([1] * 4, [2] * 3, [3] * 2)
    m = allowed_mask(pair)
    p, c, _ = pair.layout
    assert not m[p + c :, p : p + c].any()  # rejected rows, chosen columns
    assert m[p + c :, :p].all()  # rejected rows see the whole prompt
    assert torch.equal(m[: p + c, : p + c], torch.ones(p + c, p + c, dtype=torch.bool).tril())
    additive = dense_attention_mask(pair, dtype=torch.float32)[0, 0]
    assert torch.equal(additive == 0, m)


def test_split_sdpa_and_flex_match_dense_mask() -> None:
    """The three implementations of the attention rule agree (outputs and input gradients)."""
    torch.manual_seed(0)
    pair = pack_pair(list(range(1, 20)), list(range(7)), list(range(11)))  # T = 37, not block aligned
    h, kvh, t, d = 4, 2, pair.seq_len, 16
    q = torch.randn(1, h, t, d, requires_grad=True)
    k = torch.randn(1, kvh, t, d, requires_grad=True)
    v = torch.randn(1, kvh, t, d, requires_grad=True)
    module = torch.nn.Module()
    module.training = False
    dense = F.scaled_dot_product_attention(
        q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), attn_mask=dense_attention_mask(pair)
    ).transpose(1, 2)
    split, _ = prefix_sdpa_attention(module, q, k, v, None, scaling=d**-0.5, prefix_layout=pair.layout)
    assert (split - dense).abs().max().item() < 1e-6
    g_dense = torch.autograd.grad(dense.square().sum(), (q, k, v))
    g_split = torch.autograd.grad(split.square().sum(), (q, k, v))
    assert max((a - b).abs().max().item() for a, b in zip(g_dense, g_split, strict=True)) < 1e-5

    from torch.nn.attention.flex_attention import flex_attention

    block_mask = flex_block_mask(pair, device="cpu", block_size=16)
    with pytest.warns(UserWarning):  # eager (unfused) flex on CPU warns; the mask is what is tested
        flex = flex_attention(q.detach(), k.detach(), v.detach(), block_mask=block_mask, enable_gqa=True)
    assert (flex.transpose(1, 2) - dense.detach()).abs().max().item() < 1e-5


def test_middle_truncation_of_the_prompt_only() -> None:
    prompt = list(range(10))
    assert truncate_prompt_middle(prompt, 5) == [0, 1, 2, 8, 9]
    assert truncate_prompt_middle(prompt, 1) == [0]
    assert truncate_prompt_middle(prompt, 20) == prompt
    # budget = max_length - longest response; completions untouched
    assert fit_pair(prompt, [1] * 3, [1] * 4, max_length=10) == [0, 1, 2, 7, 8, 9]
    assert fit_pair(prompt, [1] * 3, [1] * 10, max_length=10) is None
    assert fit_pair(prompt, [1], [1], max_length=None) == prompt


# -- shared == unshared on a real model ---------------------------------------------------------

@pytest.mark.parametrize("attention", ["split_sdpa", "dense_mask"])
def test_shared_equals_unshared_lora(attention: str) -> None:
    model = lora_model()
    packed = PackedPairModel(model, attention=attention, logprob_chunk_size=4)  # several LM-head chunks
    pair = pack_pair(PROMPT, CHOSEN, REJECTED)

    with torch.no_grad(), model.disable_adapter():
        ref_c = unshared_token_logps(model, PROMPT, CHOSEN).sum()
        ref_r = unshared_token_logps(model, PROMPT, REJECTED).sum()
    ref_c_shared, ref_r_shared = packed(pair, reference=True)
    assert abs(ref_c_shared.sum().item() - ref_c.item()) < TOL
    assert abs(ref_r_shared.sum().item() - ref_r.item()) < TOL

    # unshared: two sequences
    c_u, r_u, loss_u, g_u = unshared_loss_and_grads(model, ref_c, ref_r)

    c_s, r_s = packed(pair)
    assert (c_s - c_u.detach()).abs().max().item() < TOL
    assert (r_s - r_u.detach()).abs().max().item() < TOL
    loss_s = pair_loss(c_s, r_s, ref_c_shared.sum(), ref_r_shared.sum(), BETA, LAM)
    loss_s.loss.backward()
    g_s = grads(model)
    assert abs(loss_s.loss.item() - loss_u.loss.item()) < TOL
    assert abs(loss_s.nll_loss.item() - loss_u.nll_loss.item()) < TOL
    assert loss_u.dpo_loss.item() != pytest.approx(0.6931, abs=1e-3)  # policy != reference: a real test
    assert len(g_s) == 2 * 7 * 2  # lora_A and lora_B of 7 projections in 2 layers
    assert max_diff(g_s, g_u) < TOL


def test_shared_equals_unshared_full_finetune_with_checkpointing_and_offload() -> None:
    """All weights trainable (embeddings, LM head included); checkpointing and CPU offload exact too."""
    ref_c, ref_r = torch.tensor(-30.0), torch.tensor(-41.0)
    model = tiny_llama(VOCAB, seed=3)
    _, _, out_u, g_u = unshared_loss_and_grads(model, ref_c, ref_r)

    packed = PackedPairModel(model, attention="split_sdpa", gradient_checkpointing=True)
    packed.train()
    pair = pack_pair(PROMPT, CHOSEN, REJECTED)
    for offload in (False, True):
        c_s, r_s = packed(pair, offload=offload)
        out_s = pair_loss(c_s, r_s, ref_c, ref_r, BETA, LAM)
        out_s.loss.backward()
        g_s = grads(model)
        model.zero_grad(set_to_none=True)
        assert abs(out_s.loss.item() - out_u.loss.item()) < TOL
        assert max_diff(g_s, g_u) < TOL, f"offload={offload}"
    assert packed.checkpointer.offloaded_calls == 2  # both decoder layers went through the offload path


def test_batch_nll_pools_tokens_like_trl() -> None:
    """The NLL term averages over all chosen tokens of the batch, not per pair."""
    token_logps = [torch.tensor([-1.0, -2.0]), torch.tensor([-4.0, -4.0, -4.0, -4.0])]
    nll_sums = torch.stack([-t.sum() for t in token_logps])
    counts = torch.tensor([2, 4])
    zero = torch.zeros(2)
    out = dpo_nll_loss(zero, zero, zero, zero, nll_sums, counts, BETA, LAM)
    assert out.nll_loss.item() == pytest.approx(19.0 / 6)
    assert out.dpo_loss.item() == pytest.approx(0.693147, abs=1e-6)


def test_packed_pair_is_immutable_value() -> None:
    pair = pack_pair([1, 2], [3], [4])
    assert isinstance(pair, PackedPair) and pair.unshared_tokens == 2 * 2 + 1 + 1
