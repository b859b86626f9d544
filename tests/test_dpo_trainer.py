"""The training loop end to end on a tiny model: learning, logging, checkpoints, resume, data errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from lr_eval.train.data import (  # noqa: E402
    PreferenceDataError,
    parse_example,
    prepare_pairs,
    read_preference_jsonl,
)
from lr_eval.testing.tiny import save_tiny_model  # noqa: E402
from lr_eval.train.trainer import DPOConfig, DPOTrainer, load_model_and_tokenizer, lr_multiplier, run_dpo  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")

TIMING_KEYS = {"step_time_s", "tokens_per_s", "mfu", "peak_mem_gib"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dpo")
    save_tiny_model(root / "model", n_words=64, seed=0)
    rng = random.Random(0)
    with (root / "pairs.jsonl").open("w") as fh:
        for i in range(8):
            words = " ".join(f"w{rng.randrange(20, 64)}" for _ in range(rng.randrange(8, 24)))
            chosen, rejected = " w1 w2 w3 w4", " w5 w6 w7"
            if i % 2:  # the context + question form
                fh.write(json.dumps({"context": words, "question": "w9 w10", "chosen": chosen, "rejected": rejected}))
            else:
                fh.write(json.dumps({"prompt": words, "chosen": chosen, "rejected": rejected}))
            fh.write("\n")
    return root


def _config(workdir: Path, out: str, **kw) -> DPOConfig:
    base = dict(
        model=str(workdir / "model"),
        train_file=str(workdir / "pairs.jsonl"),
        output_dir=str(workdir / out),
        batch_size=4,
        max_steps=4,
        learning_rate=5e-3,
        lr_scheduler="cosine",
        warmup_steps=1,
        lora_r=8,
        lora_alpha=16,
        max_length=20,  # some prompts get cut in the middle
        console=False,
    )
    base.update(kw)
    return DPOConfig(**base)


def _trainer(config: DPOConfig) -> DPOTrainer:
    model, tokenizer = load_model_and_tokenizer(config)
    prepared = prepare_pairs(tokenizer, read_preference_jsonl(config.train_file), config.max_length)
    assert prepared.truncated > 0 and not prepared.dropped
    return DPOTrainer(config, model, tokenizer, prepared.pairs)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _strip_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def test_a_few_steps_raise_reward_accuracy(workdir: Path) -> None:
    trainer = _trainer(_config(workdir, "learn", max_steps=5, lr_scheduler="constant", warmup_steps=0))
    before = trainer.evaluate_pairs()
    records = trainer.train()
    after = trainer.evaluate_pairs()
    assert before["rewards/accuracy"] == 0.0  # fresh LoRA (B = 0): policy == reference, no margin
    assert after["rewards/accuracy"] == 1.0 and after["rewards/margins"] > 0.1
    assert after["loss"] < before["loss"]
    logged = _records(workdir / "learn" / "metrics.jsonl")
    assert [r["step"] for r in logged] == [1, 2, 3, 4, 5]
    for key in ("loss", "dpo_loss", "nll_loss", "rewards/chosen", "rewards/rejected", "rewards/margins",
                "rewards/accuracy", "grad_norm", "learning_rate", "tokens_per_s", "mfu", "peak_mem_gib"):
        assert key in logged[0], key
    assert records[0]["loss"] == pytest.approx(records[0]["dpo_loss"] + 0.1 * records[0]["nll_loss"])
    assert records[0]["dpo_loss"] == pytest.approx(0.693147, abs=1e-6)


def test_save_then_resume_continues_the_same_run(workdir: Path) -> None:
    straight = _config(workdir, "straight")
    run_dpo(straight)

    interrupted = _config(workdir, "resumed", save_steps=1, save_total_limit=1)
    first = _trainer(interrupted)
    first.train(stop_at_step=2)
    del first
    assert [p.name for p in (workdir / "resumed").glob("checkpoint-*")] == ["checkpoint-2"]
    interrupted.resume_from = "latest"
    run_dpo(interrupted)

    a = _records(workdir / "straight" / "metrics.jsonl")
    b = _records(workdir / "resumed" / "metrics.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    assert _strip_timing(a) == _strip_timing(b)  # same losses, lr schedule, grad norms: bit for bit

    from safetensors.torch import load_file

    wa = load_file(str(workdir / "straight" / "final" / "adapter_model.safetensors"))
    wb = load_file(str(workdir / "resumed" / "final" / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    state = json.loads((workdir / "resumed" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["step"] == 4 and state["pairs_consumed"] == 16


def test_saved_adapter_and_merged_model_load_in_transformers(workdir: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = _config(workdir, "export", max_steps=2, save_merged=True)
    run_dpo(config)
    out = workdir / "export"
    saved_config = json.loads((out / "merged" / "config.json").read_text())
    assert "lr_prefix" not in json.dumps(saved_config)
    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    base = AutoModelForCausalLM.from_pretrained(workdir / "model")
    adapted = PeftModel.from_pretrained(base, out / "final")
    ids = torch.tensor([[1, 30, 31, 32, 5]])
    with torch.no_grad():
        diff = (merged(input_ids=ids).logits - adapted(input_ids=ids).logits).abs().max().item()
    assert diff < 1e-4
    assert (out / "final" / "tokenizer.json").is_file()


def test_full_finetune_precomputed_reference_resumes(workdir: Path) -> None:
    kw = dict(use_lora=False, learning_rate=1e-3, max_steps=3, batch_size=2)
    run_dpo(_config(workdir, "full_straight", **kw))
    config = _config(workdir, "full_resumed", **kw)
    first = _trainer(config)
    assert config.reference_mode == "precompute"
    first.train(stop_at_step=1)
    assert first.reference_logps is not None and first.reference_logps.shape == (8, 2)
    del first
    config.resume_from = "latest"
    run_dpo(config)
    a = _records(workdir / "full_straight" / "metrics.jsonl")
    b = _records(workdir / "full_resumed" / "metrics.jsonl")
    assert _strip_timing(a) == _strip_timing(b)
    assert (workdir / "full_resumed" / "final" / "model.safetensors").is_file()


def test_lr_schedule() -> None:
    assert [lr_multiplier(s, 10, 2, "cosine") for s in (0, 1)] == [0.5, 1.0]
    assert lr_multiplier(2, 10, 2, "cosine") == pytest.approx(1.0)
    assert lr_multiplier(9, 10, 2, "linear") == pytest.approx(1 / 8)
    assert lr_multiplier(5, 10, 0, "constant") == 1.0


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="online reference needs LoRA"):
        DPOConfig(use_lora=False, reference="online").validate()
    with pytest.raises(ValueError, match="attention"):
        DPOConfig(attention="eager").validate()


def test_data_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = {"prompt": "p", "chosen": "a", "rejected": "b"}
    cases = [
        ("{not json", "bad.jsonl:2: invalid JSON"),
        (json.dumps({"prompt": "p", "chosen": "a"}), "bad.jsonl:2: missing field 'rejected'"),
        (json.dumps({"chosen": "a", "rejected": "b"}), "bad.jsonl:2: missing field 'prompt'"),
        (json.dumps({"context": "c", "chosen": "a", "rejected": "b"}), "2: field 'context' given without"),
        (json.dumps({"prompt": "p", "chosen": 3, "rejected": "b"}), "bad.jsonl:2: field 'chosen' must be a string"),
        (json.dumps({"prompt": "p", "chosen": "  ", "rejected": "b"}), "bad.jsonl:2: field 'chosen' is empty"),
        (json.dumps([1, 2]), "bad.jsonl:2: expected a JSON object"),
    ]
    for line, message in cases:
        path.write_text(json.dumps(good) + "\n" + line + "\n")
        with pytest.raises(PreferenceDataError, match=message.replace("(", r"\(")):
            read_preference_jsonl(path)
    # LongReward-10k field names are accepted
    ex = parse_example({"context": "c", "query": "q", "win_response": "a", "lose_response": "b"})
    assert (ex.user_text(), ex.chosen, ex.rejected) == ("c\n\nq", "a", "b")
    path.write_text("\n")
    with pytest.raises(PreferenceDataError, match="no preference pairs"):
        read_preference_jsonl(path)


def test_pairs_whose_response_cannot_fit_are_dropped_not_cut(workdir: Path) -> None:
    from lr_eval.train.data import PreferenceExample
    from lr_eval.testing.tiny import word_tokenizer

    tok = word_tokenizer(64)
    long = " " + " ".join(["w3"] * 30)
    examples = [PreferenceExample(" w1 w2", long, prompt="w5 w6"), PreferenceExample(" w1", " w2", prompt="w5 w6 w7")]
    prepared = prepare_pairs(tok, examples, max_length=16, prompt_format="raw")
    assert len(prepared.pairs) == 1 and len(prepared.dropped) == 1
    assert prepared.pairs[0].chosen_ids == [5, 2]  # " w1" + EOS, untouched
