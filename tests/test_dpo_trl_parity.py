"""Our prefix-shared DPO + NLL equals TRL 1.16's DPOTrainer (loss_type sigmoid + sft) on the same pairs.

TRL is the oracle: its own dataset preparation, collator and ``compute_loss`` run on the same tiny
LoRA model; we compare token ids, loss, logged rewards and LoRA gradients.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from dpo_fixtures import nonzero_lora_config  # noqa: E402

from lr_eval.train.data import PreferenceExample, tokenize_example  # noqa: E402
from lr_eval.train.loss import dpo_nll_loss  # noqa: E402
from lr_eval.train.modeling import PackedPairModel  # noqa: E402
from lr_eval.train.packing import pack_pair  # noqa: E402
from lr_eval.testing.tiny import tiny_llama, word_tokenizer  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")

BETA, LAM = 0.15, 0.1
ROWS = [
    {"prompt": "w1 w2 w3 w4 w5 w6 w7 w8 w9", "chosen": " w10 w11 w12", "rejected": " w13 w14 w15 w16 w17"},
    {"prompt": "w20 w21 w22 w23", "chosen": " w24 w25 w26 w27 w28 w29", "rejected": " w30"},
    {"prompt": "w31 w32 w33 w34 w35 w36 w37", "chosen": " w38", "rejected": " w39 w40"},
]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] }} {{ m['content'] }} </s>{% endfor %}"
    "{% if add_generation_prompt %}assistant{% endif %}"
)


def _trl_trainer(tmp_path, rows, tokenizer, batch_size):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model = tiny_llama(len(tokenizer), seed=0)
    args = DPOConfig(
        output_dir=str(tmp_path / "trl"),
        use_cpu=True,
        bf16=False,
        report_to="none",
        gradient_checkpointing=False,
        per_device_train_batch_size=batch_size,
        beta=BETA,
        loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, LAM],
        max_length=None,
        seed=0,
        save_strategy="no",
        dataloader_num_workers=0,
    )
    return DPOTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
        peft_config=nonzero_lora_config(),
    )


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer(60, extra_words=("user", "assistant"))


def test_tokenization_matches_trl(tmp_path, tokenizer) -> None:
    trainer = _trl_trainer(tmp_path, ROWS, tokenizer, 1)
    for i, row in enumerate(ROWS):
        example = PreferenceExample(row["chosen"], row["rejected"], prompt=row["prompt"])
        ours = tokenize_example(tokenizer, example, "raw")
        theirs = trainer.train_dataset[i]
        assert ours.prompt_ids == theirs["prompt_ids"]
        assert ours.chosen_ids == theirs["chosen_ids"] and ours.chosen_ids[-1] == tokenizer.eos_token_id
        assert ours.rejected_ids == theirs["rejected_ids"]


def test_chat_tokenization_matches_trl_conversational(tmp_path, tokenizer) -> None:
    tok = word_tokenizer(60, extra_words=("user", "assistant"))
    tok.chat_template = CHAT_TEMPLATE
    rows = [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"].strip()}],
            "rejected": [{"role": "assistant", "content": r["rejected"].strip()}],
        }
        for r in ROWS
    ]
    trainer = _trl_trainer(tmp_path, rows, tok, 1)
    for i, row in enumerate(ROWS):
        example = PreferenceExample(row["chosen"].strip(), row["rejected"].strip(), prompt=row["prompt"])
        ours = tokenize_example(tok, example, "auto")  # auto picks the chat template
        theirs = trainer.train_dataset[i]
        assert (ours.prompt_ids, ours.chosen_ids, ours.rejected_ids) == (
            theirs["prompt_ids"],
            theirs["chosen_ids"],
            theirs["rejected_ids"],
        )


@pytest.mark.parametrize("batch_size", [1, 3])
def test_loss_rewards_and_grads_match_trl(tmp_path, tokenizer, batch_size: int) -> None:
    trainer = _trl_trainer(tmp_path, ROWS, tokenizer, batch_size)
    model = trainer.model  # the PeftModel TRL built (same adapter init for both sides)
    examples = [trainer.train_dataset[i] for i in range(batch_size)]

    batch = trainer.data_collator(examples)
    trl_loss = trainer.compute_loss(model, batch)
    trl_loss.backward()
    trl_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    trl_metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    model.zero_grad(set_to_none=True)

    packed = PackedPairModel(model, attention="split_sdpa", logprob_chunk_size=3)
    pol_c, pol_r, ref_c, ref_r, nll, counts = [], [], [], [], [], []
    for ex in examples:
        pair = pack_pair(ex["prompt_ids"], ex["chosen_ids"], ex["rejected_ids"])
        rc, rr = packed(pair, reference=True)
        c, r = packed(pair)
        pol_c.append(c.sum())
        pol_r.append(r.sum())
        ref_c.append(rc.sum())
        ref_r.append(rr.sum())
        nll.append(-c.sum())
        counts.append(c.numel())
    ours = dpo_nll_loss(
        torch.stack(pol_c), torch.stack(pol_r), torch.stack(ref_c), torch.stack(ref_r),
        torch.stack(nll), torch.tensor(counts), BETA, LAM,
    )
    ours.loss.backward()
    our_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    assert abs(ours.loss.item() - trl_loss.item()) < 1e-5
    assert abs(ours.dpo_loss.item() - 0.6931) > 1e-3  # a non-trivial DPO term
    assert ours.chosen_rewards.mean().item() == pytest.approx(trl_metrics["rewards/chosen"], abs=1e-5)
    assert ours.rejected_rewards.mean().item() == pytest.approx(trl_metrics["rewards/rejected"], abs=1e-5)
    assert ours.margins.mean().item() == pytest.approx(trl_metrics["rewards/margins"], abs=1e-5)
    assert ours.accuracy.mean().item() == pytest.approx(trl_metrics["rewards/accuracies"])
    assert torch.stack(pol_c).mean().item() == pytest.approx(trl_metrics["logps/chosen"], abs=1e-4)
    assert our_grads.keys() == trl_grads.keys() and len(our_grads) == 28
    worst = max((our_grads[k] - trl_grads[k]).abs().max().item() for k in our_grads)
    assert worst < 1e-5
