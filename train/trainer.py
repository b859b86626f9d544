"""The DPO training loop (our own, on accelerate): prefix-shared pairs, LoRA by default.

One optimizer step = ``batch_size`` pairs (global); each pair is one packed forward/backward
(one pair at a time keeps 64k-token sequences within one GPU), gradients accumulate, then AdamW.
Per pair: reference log-probs (adapter disabled, or precomputed), policy log-probs with grad,
L = L_DPO + λ·NLL (see loss.py), backward scaled by 1/pairs.

Entry points: ``run_dpo(DPOConfig)`` for the CLI, ``DPOTrainer`` for in-process use (tests,
benchmark) with an already built model / tokenizer / pairs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from lr_eval.jsonl import check_dir_writable

from . import checkpoint as ckpt
from . import distributed as dist_utils
from .data import PreparedData, TokenizedPair, prepare_pairs, read_preference_jsonl
from .dpo_config import DPOConfig, check_model
from .flops import ModelShape, mfu, packed_pair_flops
from .loss import pair_loss
from .metrics_log import MetricsLogger, console_message
from .modeling import PackedPairModel, base_model_of, disable_dropout, is_peft_model
from .packing import PackedPair, pack_pair


def _compute_dtype(config: DPOConfig, device: torch.device) -> torch.dtype:
    if config.dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, config.dtype)


def lr_multiplier(step: int, total: int, warmup: int, kind: str) -> float:
    """Learning-rate factor for optimizer step ``step`` (0-based): linear warmup, then decay."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    progress = min(max(progress, 0.0), 1.0)
    if kind == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def data_fingerprint(pairs: list[TokenizedPair]) -> str:
    """Cheap identity of the tokenized data (resuming on different data is refused)."""
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(f"{pair.index}:{len(pair.prompt_ids)}:{len(pair.chosen_ids)}:{len(pair.rejected_ids)};".encode())
        digest.update(repr((pair.prompt_ids[:8], pair.prompt_ids[-8:], pair.chosen_ids[:8])).encode())
    return digest.hexdigest()[:16]


class DPOTrainer:
    """Trains ``model`` on tokenized preference ``pairs`` with prefix sharing.

    ``model`` is a transformers causal LM (LoRA is added when ``config.use_lora``) or a PeftModel
    with a fresh adapter (used as is; the reference is the adapter disabled).  Nothing is read from
    ``config.model`` / ``config.train_file`` here.

    Step records: loss, dpo_loss, nll_loss, rewards/{chosen,rejected,margins,accuracy},
    logps/{chosen,rejected} (means over the step's pairs), grad_norm (before clipping),
    learning_rate, tokens (packed tokens P + C + R), tokens_per_s (packed tokens per second), mfu
    (see flops.py), peak_mem_gib (CUDA only), step_time_s, epoch.
    """

    def __init__(self, config: DPOConfig, model: torch.nn.Module, tokenizer: Any, pairs: list[TokenizedPair]):
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        config.validate()
        if not pairs:
            raise ValueError("no training pairs")
        if config.attention == "flex" and not torch.cuda.is_available():
            raise ValueError("attention='flex' trains on CUDA only (FlexAttention has no CPU backward)")
        self.config = config
        self.tokenizer = tokenizer
        self.pairs = pairs
        self.output_dir = Path(config.output_dir)

        # DeepSpeed also runs without GPUs (DS_ACCELERATOR=cpu), but accelerate selects it only when not told cpu.
        deepspeed = dist_utils.deepspeed_launch()
        cpu = not torch.cuda.is_available() and not deepspeed
        probe = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.compute_dtype = _compute_dtype(config, probe)
        mixed = "bf16" if self.compute_dtype == torch.bfloat16 else "no"
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if config.batch_size % launched:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by {launched} processes")
        # DeepSpeed accumulates itself: it is told the pairs per process and step (one pair per micro-step).
        accumulation = config.batch_size // launched if deepspeed else 1
        self.accelerator = Accelerator(mixed_precision=mixed, cpu=cpu, gradient_accumulation_steps=accumulation)
        self.engine = dist_utils.engine_of(self.accelerator)
        if config.save_merged and self.engine in ("fsdp2", "deepspeed"):
            raise ValueError("save_merged under FSDP2 / DeepSpeed: merge the saved adapter afterwards "
                             "(peft's merge_and_unload on one process)")
        fsdp = dist_utils.fsdp_settings(self.accelerator, self.compute_dtype) if self.engine == "fsdp2" else None
        set_seed(config.seed)  # before LoRA init: the adapter's A matrices are random

        base = base_model_of(model)
        base.config.use_cache = False
        if config.use_lora and not is_peft_model(model):
            from peft import LoraConfig, get_peft_model

            for p in model.parameters():
                p.requires_grad_(False)
            lora = LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=config.lora_target_modules,
                bias="none",
                task_type="CAUSAL_LM",
            )
            model = get_peft_model(model, lora)
        disable_dropout(model)
        self.model = model
        self.packed = PackedPairModel(
            model,
            attention=config.attention,  # type: ignore[arg-type]  # validated by DPOConfig
            logprob_chunk_size=config.logprob_chunk_size,
            gradient_checkpointing=config.gradient_checkpointing or bool(fsdp and fsdp.activation_checkpointing),
        )
        self.packed.train()
        self.shape = ModelShape.from_model(model)
        if fsdp is not None:
            dist_utils.shard_fsdp2(self.packed, fsdp, self.accelerator.device)

        self.trainable = [p for p in self.packed.parameters() if p.requires_grad]
        if not self.trainable:
            raise ValueError("the model has no trainable parameters")
        optimizer = torch.optim.AdamW(
            self.trainable,
            lr=config.learning_rate,
            betas=(config.adam_beta1, config.adam_beta2),
            eps=config.adam_epsilon,
            weight_decay=config.weight_decay,
        )
        self.raw_optimizer = optimizer
        if self.engine == "fsdp2":
            self.wrapped, self.optimizer = self.packed, optimizer  # sharded in place; nothing to wrap
        else:
            if self.engine == "deepspeed":
                dist_utils.fill_deepspeed_config(self.accelerator, accumulation, config.max_grad_norm)
            self.wrapped, self.optimizer = self.accelerator.prepare(self.packed, optimizer)
            if self.engine == "deepspeed":
                dist_utils.gather_lm_head_with_root(self.packed)

        if config.max_steps is not None:
            self.total_steps = config.max_steps
        else:
            self.total_steps = max(1, math.ceil(config.num_epochs * len(pairs) / config.batch_size))
        if config.warmup_steps is not None:
            self.warmup_steps = config.warmup_steps
        else:
            self.warmup_steps = int(round(config.warmup_ratio * self.total_steps))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: lr_multiplier(s, self.total_steps, self.warmup_steps, config.lr_scheduler),
        )
        self.step = 0
        self.fingerprint = data_fingerprint(pairs)
        self.reference_logps: torch.Tensor | None = None  # [n_pairs, 2] when precomputed
        self._orders: dict[int, torch.Tensor] = {}
        self.logger: MetricsLogger | None = None

    # -- data order ---------------------------------------------------------------------------
    def _order(self, epoch: int) -> torch.Tensor:
        if epoch not in self._orders:
            n = len(self.pairs)
            if self.config.shuffle:
                gen = torch.Generator().manual_seed(self.config.seed + epoch)
                self._orders = {epoch: torch.randperm(n, generator=gen)}
            else:
                self._orders = {epoch: torch.arange(n)}
        return self._orders[epoch]

    def batch_indices(self, step: int) -> list[int]:
        """Pair indices of optimizer step ``step`` (all processes): a deterministic stream, so a
        resumed run only needs the step number to continue with the same pairs."""
        bs, n = self.config.batch_size, len(self.pairs)
        out = []
        for position in range(step * bs, (step + 1) * bs):
            out.append(int(self._order(position // n)[position % n]))
        return out

    def packed_pair(self, index: int) -> PackedPair:
        pair = self.pairs[index]
        return pack_pair(pair.prompt_ids, pair.chosen_ids, pair.rejected_ids)

    # -- reference ----------------------------------------------------------------------------
    @property
    def module(self) -> PackedPairModel:
        return self.accelerator.unwrap_model(self.wrapped)

    def _reference_sums(self, pair: PackedPair) -> tuple[float, float]:
        module = self.module
        with torch.no_grad(), self.accelerator.autocast():
            # Full fine-tuning: the current weights, only valid before the first update (precompute).
            c, r = module(pair, reference=is_peft_model(module.model))
        return float(c.sum()), float(r.sum())

    def precompute_reference(self) -> torch.Tensor:
        """Reference log-prob sums of every pair, computed once; shared across processes."""
        acc = self.accelerator
        n = len(self.pairs)
        out = torch.zeros(n, 2, dtype=torch.float64, device=acc.device)
        for index in dist_utils.equal_rounds(n, acc.process_index, acc.num_processes):
            sums = self._reference_sums(self.packed_pair(0 if index is None else index))
            if index is not None:
                out[index] = torch.tensor(sums, dtype=torch.float64)
        if acc.num_processes > 1:
            out = acc.reduce(out, reduction="sum")
        self.reference_logps = out.cpu()
        return self.reference_logps

    # -- one step -----------------------------------------------------------------------------
    def train_step(self) -> dict[str, Any]:
        """One optimizer step over ``batch_size`` pairs; returns the step's metrics."""
        acc, cfg = self.accelerator, self.config
        device = acc.device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        indices = self.batch_indices(self.step)
        local = indices[acc.process_index :: acc.num_processes]
        lr = self.scheduler.get_last_lr()[0]
        sums = torch.zeros(9, dtype=torch.float64)
        online = self.reference_logps is None
        flops = 0.0
        for j, index in enumerate(local):
            pair = self.packed_pair(index)
            if online:
                ref_c, ref_r = self._reference_sums(pair)
            else:
                ref_c, ref_r = (float(v) for v in self.reference_logps[index])
            offload = cfg.offload_min_tokens is not None and pair.seq_len >= cfg.offload_min_tokens
            # DDP all-reduces once per step; FSDP2 reduce-scatters every pair (sharded gradients
            # accumulate, unsharded ones would cost a full copy); DeepSpeed steps at the boundary that
            # accelerate's accumulate() marks (every len(local) pairs), else after every pair.
            last = j == len(local) - 1
            if self.engine == "deepspeed":
                sync = acc.accumulate(self.wrapped)
            elif self.engine == "ddp" and not last:
                sync = acc.no_sync(self.wrapped)
            else:
                sync = contextlib.nullcontext()
            with sync:
                with acc.autocast():
                    chosen, rejected = self.wrapped(pair, offload=offload)
                    out = pair_loss(chosen, rejected, ref_c, ref_r, cfg.beta, cfg.nll_weight)
                acc.backward(out.loss if self.engine == "deepspeed" else out.loss / len(local))
            sums += torch.tensor(
                [
                    out.loss.item(),
                    out.dpo_loss.item(),
                    out.nll_loss.item(),
                    out.chosen_rewards.item(),
                    out.rejected_rewards.item(),
                    out.accuracy.item(),
                    chosen.detach().sum().item(),
                    rejected.detach().sum().item(),
                    pair.seq_len,
                ],
                dtype=torch.float64,
            )
            flops += packed_pair_flops(self.shape, *pair.layout, reference_forward=online)
        max_norm = cfg.max_grad_norm if cfg.max_grad_norm else float("inf")
        grad_norm = acc.clip_grad_norm_(self.trainable, max_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        self.step += 1

        totals = torch.cat([sums, torch.tensor([len(local), flops], dtype=torch.float64)]).to(device)
        if acc.num_processes > 1:
            totals = acc.reduce(totals, reduction="sum")
        totals = totals.cpu().tolist()
        pairs = totals[9]
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        names = ["loss", "dpo_loss", "nll_loss", "rewards/chosen", "rewards/rejected", "rewards/accuracy",
                 "logps/chosen", "logps/rejected"]
        record: dict[str, Any] = {"step": self.step}
        record.update({name: totals[i] / pairs for i, name in enumerate(names)})
        record["rewards/margins"] = record["rewards/chosen"] - record["rewards/rejected"]
        record.update(
            {
                "grad_norm": dist_utils.local_norm(grad_norm),
                "learning_rate": lr,
                "pairs": int(pairs),
                "tokens": int(totals[8]),
                "step_time_s": seconds,
                "tokens_per_s": totals[8] / seconds,
                "mfu": mfu(totals[10], seconds * acc.num_processes, cfg.peak_tflops),
                "peak_mem_gib": peak,
                "epoch": self.step * cfg.batch_size / len(self.pairs),
            }
        )
        return record

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate_pairs(self, pairs: list[TokenizedPair] | None = None) -> dict[str, float]:
        """Mean loss / reward accuracy / margin over ``pairs`` (default: the training pairs)."""
        pairs = self.pairs if pairs is None else pairs
        cfg = self.config
        if pairs is not self.pairs and not is_peft_model(self.module.model):
            raise ValueError("full fine-tuning has no reference for new pairs (it was precomputed for training)")
        totals = torch.zeros(4, dtype=torch.float64)
        with torch.no_grad():
            for index, tok in enumerate(pairs):
                pair = pack_pair(tok.prompt_ids, tok.chosen_ids, tok.rejected_ids)
                if self.reference_logps is not None and pairs is self.pairs:
                    ref_c, ref_r = (float(v) for v in self.reference_logps[index])
                else:
                    ref_c, ref_r = self._reference_sums(pair)
                with self.accelerator.autocast():
                    chosen, rejected = self.module(pair)
                out = pair_loss(chosen, rejected, ref_c, ref_r, cfg.beta, cfg.nll_weight)
                totals += torch.tensor(
                    [out.loss.item(), out.accuracy.item(), out.margins.item(), 1.0], dtype=torch.float64
                )
        n = totals[3].item()
        return {"loss": totals[0].item() / n, "rewards/accuracy": totals[1].item() / n,
                "rewards/margins": totals[2].item() / n}

    # -- checkpoints --------------------------------------------------------------------------
    def _model_state(self) -> dict[str, torch.Tensor] | None:
        """The gathered weights to save (adapter or full model) under sharding engines; None otherwise.

        A collective: every rank calls it.  Keys are those of ``self.module.model``'s state dict.
        """
        model = self.module.model
        if self.engine == "fsdp2":
            names = None
            if is_peft_model(model):
                names = {name for name, p in model.named_parameters() if p.requires_grad}
            return dist_utils.full_state_dict(model, names)
        if self.engine == "deepspeed":  # ZeRO-3: the 16-bit weights, gathered on rank 0
            state = self.accelerator.get_state_dict(self.wrapped)
            return {k.removeprefix("model."): v for k, v in (state or {}).items()}
        return None

    def save_model(self, directory: Path, merged: bool = False) -> Path:
        """HF-format model (adapter, or full weights) + tokenizer in ``directory``: one folder, any engine."""
        acc = self.accelerator
        acc.wait_for_everyone()
        state = self._model_state()
        if acc.is_main_process:
            directory.mkdir(parents=True, exist_ok=True)
            model = self.module.model
            if merged:
                if not is_peft_model(model):
                    raise ValueError("save_merged needs a LoRA model")
                model = model.merge_and_unload()  # the run is over: merging in place is fine
            model.save_pretrained(directory, **({} if state is None else {"state_dict": state}))
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(directory)
        acc.wait_for_everyone()
        return directory

    def save_checkpoint(self) -> Path:
        directory = self.output_dir / f"checkpoint-{self.step}"
        self.save_model(directory)
        acc = self.accelerator
        training: dict[str, Any] = {"scheduler": self.scheduler.state_dict(), "rng": ckpt.rng_state()}
        if self.engine == "deepspeed":  # optimizer shards in DeepSpeed's own format (same world size)
            self.wrapped.save_checkpoint(str(directory / ckpt.DEEPSPEED_STATE), tag="state")
        else:
            training["optimizer"] = dist_utils.optimizer_state(self.packed, self.raw_optimizer)
        if acc.is_main_process:
            torch.save(training, directory / ckpt.TRAINING_STATE)
            if self.reference_logps is not None:
                torch.save(self.reference_logps, directory / ckpt.REFERENCE_LOGPS)
            ckpt.write_trainer_state(
                directory,
                {
                    "step": self.step,
                    "total_steps": self.total_steps,
                    "pairs_consumed": self.step * self.config.batch_size,
                    "n_pairs": len(self.pairs),
                    "data_fingerprint": self.fingerprint,
                    "use_lora": is_peft_model(self.module.model),
                    "engine": self.engine,
                    "num_processes": acc.num_processes,
                    "config": dataclasses.asdict(self.config),
                },
            )
            ckpt.prune_checkpoints(self.output_dir, self.config.save_total_limit)
        acc.wait_for_everyone()
        return directory

    def resume(self, directory: Path) -> None:
        """Restore model/adapter weights, optimizer, scheduler, RNG, step and reference from a checkpoint."""
        state = ckpt.read_trainer_state(directory)
        if state["data_fingerprint"] != self.fingerprint or state["n_pairs"] != len(self.pairs):
            raise ValueError(f"{directory} was trained on different data (fingerprint or pair count differ)")
        saved_bs = state["config"]["batch_size"]
        if saved_bs != self.config.batch_size:
            raise ValueError(f"{directory} used batch_size {saved_bs}, this run {self.config.batch_size}")
        training = torch.load(directory / ckpt.TRAINING_STATE, map_location="cpu", weights_only=False)
        model = self.module.model
        if self.engine == "deepspeed":
            saved = (state.get("engine"), state.get("num_processes"))
            if saved != ("deepspeed", self.accelerator.num_processes):
                raise ValueError(f"{directory} was saved by {saved[0]} on {saved[1]} processes: DeepSpeed "
                                 f"resumes only its own state on as many processes")
            self.wrapped.load_checkpoint(str(directory / ckpt.DEEPSPEED_STATE), tag="state")
        else:
            if is_peft_model(model):
                ckpt.load_adapter_weights(model, directory)
            # Full fine-tuning: the caller loads the model from the checkpoint directory (run_dpo does).
            dist_utils.load_optimizer_state(self.packed, self.raw_optimizer, training["optimizer"])
        self.scheduler.load_state_dict(training["scheduler"])
        ckpt.set_rng_state(training["rng"])
        ref_file = directory / ckpt.REFERENCE_LOGPS
        if ref_file.is_file():
            self.reference_logps = torch.load(ref_file, map_location="cpu", weights_only=True)
        elif self.config.reference_mode == "precompute":
            raise FileNotFoundError(f"{ref_file} missing: the precomputed reference cannot be rebuilt")
        self.step = int(state["step"])

    # -- loop ---------------------------------------------------------------------------------
    def train(self, resume_from: Path | None = None, stop_at_step: int | None = None) -> list[dict[str, Any]]:
        """Run to ``total_steps`` (or stop, with a checkpoint, at ``stop_at_step``: time-limited jobs).

        Returns the step records of this call (also appended to ``metrics.jsonl``).
        """
        cfg, acc = self.config, self.accelerator
        if acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.logger = MetricsLogger(
            self.output_dir / "metrics.jsonl", cfg.logging_steps, cfg.console and acc.is_main_process,
            self.total_steps,
        )
        if resume_from is not None:
            self.resume(resume_from)
            if acc.is_main_process:
                self.logger.message(f"resumed from {resume_from} at step {self.step}")
        elif cfg.reference_mode == "precompute" and self.reference_logps is None:
            self.precompute_reference()
        if acc.is_main_process:
            self.logger.truncate_after(self.step)  # one run per file: drop records past the restart point
        last = self.total_steps if stop_at_step is None else min(stop_at_step, self.total_steps)
        records = []
        while self.step < last:
            record = self.train_step()
            records.append(record)
            if acc.is_main_process:
                self.logger.log(record)
            if cfg.save_steps and self.step % cfg.save_steps == 0 and self.step < self.total_steps:
                self.save_checkpoint()
        if self.step < self.total_steps and not (cfg.save_steps and self.step % cfg.save_steps == 0):
            self.save_checkpoint()  # stopped early: leave something to resume from
        return records

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    def close(self) -> None:
        """Drop the references accelerate keeps (model, optimizer) so their memory can be freed."""
        self.accelerator.free_memory()
        self.wrapped = self.optimizer = self.scheduler = None  # type: ignore[assignment]  # released after training

    def finish(self) -> Path:
        """Final checkpoint (resumable), ``final/`` model and optionally ``merged/``."""
        self.save_checkpoint()
        self.packed.restore_attention()
        final = self.save_model(self.output_dir / "final")
        if self.config.save_merged:
            self.save_model(self.output_dir / "merged", merged=True)
        return final


def load_model_and_tokenizer(config: DPOConfig, model_path: str | None = None):
    """Tokenizer and model for a run: weights in the compute dtype for LoRA, fp32 for full FT."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_path or config.model
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = _compute_dtype(config, device) if config.use_lora else torch.float32
    name = config.tokenizer or config.model
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        name = path
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
    except OSError as e:  # transformers' "not a local folder and not on the hub (or no network)"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FileNotFoundError(f"{name}: neither a model folder here nor a model the hub gave ({reason})") from None
    return model, tokenizer


def run_dpo(config: DPOConfig) -> None:
    """Train from ``config.model`` on ``config.train_file``; writes checkpoints, final model, metrics."""
    config.validate()
    if not config.model or not config.train_file:
        raise ValueError("DPOConfig.model and DPOConfig.train_file are required")
    output_dir = check_dir_writable(config.output_dir)
    examples = read_preference_jsonl(config.train_file)  # bad data fails before a model is loaded
    check_model(config.model)
    resume = ckpt.resolve_resume(config.resume_from, output_dir)
    model_path = None
    if resume is not None and not config.use_lora:
        model_path = str(resume)  # full fine-tuning resumes from the saved full weights
    model, tokenizer = load_model_and_tokenizer(config, model_path)
    prepared: PreparedData = prepare_pairs(tokenizer, examples, config.max_length, config.prompt_format)
    trainer = DPOTrainer(config, model, tokenizer, prepared.pairs)
    if trainer.accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        summary = {
            "pairs": len(prepared.pairs),
            "dropped": len(prepared.dropped),
            "prompts_truncated": prepared.truncated,
            "total_steps": trainer.total_steps,
            "reference": config.reference_mode,
            "attention": config.attention,
        }
        (output_dir / "data_summary.json").write_text(
            json.dumps({**summary, "dropped_lines": prepared.dropped[:100]}, indent=2) + "\n"
        )
        if config.console:
            console_message("dpo: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    trainer.train(resume_from=resume)
    final = trainer.finish()
    if trainer.accelerator.is_main_process and config.console:
        how = f"pretrained={config.model},peft={final}" if config.use_lora else f"pretrained={final}"
        console_message(f"done: lm-eval --model hf --model_args {how}")


__all__ = ["DPOConfig", "DPOTrainer", "run_dpo", "lr_multiplier"]
