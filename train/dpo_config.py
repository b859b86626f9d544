"""The settings of one DPO run (`lr-train dpo`, the ``[dpo]`` table of `lr-train run`): each option field is
a flag of `lr-train dpo` and a key of the table, its help and default written once here. No torch import, so
the command line is built without loading the trainer.

Defaults follow the LongReward paper (β 0.15, λ 0.1, lr 1e-6, 16 pairs per step, one epoch, 64k max length)
with LoRA r=16 on all linear layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lr_eval.options import option

#: The attention implementations of modeling.PackedPairModel.
ATTENTION_MODES: tuple[str, ...] = ("split_sdpa", "dense_mask", "flex")
#: The peak MFU is measured against when none is given: the 790 TFLOP/s bf16 dense matmul rate measured on an
#: H100 in specs/dpo.md (see flops.py).
DEFAULT_PEAK_TFLOPS = 790.0


@dataclass
class DPOConfig:
    """Settings of one DPO run (see the module docstring)."""

    model: str = option("", "the SFT model: HF id or folder", metavar="NAME")
    train_file: str = ""  # preference JSONL (prompt | context+question, chosen, rejected): the PAIRS argument
    output_dir: str = option("runs/dpo", "checkpoints, final model, metrics", metavar="DIR", short="o")
    tokenizer: str | None = option(None, "default: the model's", metavar="NAME")
    prompt_format: str = option("auto", "auto: the chat template when the tokenizer has one",
                                choices=("auto", "chat", "raw"))
    max_length: int | None = option(65536, "per sequence prompt + response; prompts are cut in the middle "
                                    "(0: none)", metavar="TOKENS", zero_is_none=True)

    beta: float = option(0.15, "DPO β", metavar="X")
    nll_weight: float = option(0.1, "λ of the NLL term", metavar="X", aliases=("lambda",))
    learning_rate: float = option(1e-6, "the paper's full fine-tuning rate; LoRA usually wants more", metavar="X",
                                  aliases=("lr",))
    lr_scheduler: str = option("cosine", "after warmup", choices=("constant", "linear", "cosine"))
    warmup_ratio: float = option(0.05, "", metavar="X")
    warmup_steps: int | None = option(None, "overrides --warmup-ratio", metavar="N", zero_is_none=True)
    weight_decay: float = option(0.0, "", metavar="X")
    adam_beta1: float = option(0.9, "", metavar="X")
    adam_beta2: float = option(0.999, "", metavar="X")
    adam_epsilon: float = option(1e-8, "", metavar="X")
    max_grad_norm: float | None = option(1.0, "0: no clipping", metavar="X", zero_is_none=True)
    batch_size: int = option(16, "pairs per optimizer step, all processes together", metavar="N")
    num_epochs: float = option(1.0, "", metavar="X", aliases=("epochs",))
    max_steps: int | None = option(None, "overrides --num-epochs", metavar="N", zero_is_none=True)
    shuffle: bool = option(True, "")
    seed: int = option(42, "", metavar="N")

    use_lora: bool = option(True, "LoRA adapters (--no-use-lora or --full: full fine-tuning, fp32 master "
                            "weights, precomputed reference)")
    lora_r: int = option(16, "", metavar="N")
    lora_alpha: int = option(32, "", metavar="N")
    lora_dropout: float = option(0.0, "", metavar="X")
    lora_target_modules: list[str] | str = option("all-linear", "comma-separated, or all-linear", metavar="NAMES")
    reference: str = option("auto", "reference log-probs: online (adapter disabled), precompute, or auto "
                            "(online for LoRA)", choices=("auto", "online", "precompute"))

    dtype: str = option("auto", "compute dtype; auto: bf16 on CUDA, fp32 on CPU", choices=("auto", "bfloat16",
                                                                                         "float32"))
    attention: str = option("split_sdpa", "split_sdpa, dense_mask or flex (CUDA)", metavar="NAME")
    gradient_checkpointing: bool = option(True, "")
    offload_min_tokens: int | None = option(None, "offload activation checkpoints of pairs this long",
                                            metavar="N", zero_is_none=True)
    logprob_chunk_size: int = option(1024, "LM head + log-softmax in chunks of N tokens", metavar="N")

    logging_steps: int = option(1, "console every N steps (metrics.jsonl gets every step)", metavar="N")
    console: bool = option(True, "print progress")
    save_steps: int | None = option(None, "checkpoint every N steps (default: only at the end)", metavar="N",
                                    zero_is_none=True)
    save_total_limit: int | None = option(2, "checkpoints kept (0: all)", metavar="N", zero_is_none=True)
    save_merged: bool = option(False, "also write the LoRA-merged model to OUTPUT_DIR/merged")
    resume_from: str | None = option(None, "checkpoint to resume from: a folder, latest (the newest in "
                                     "OUTPUT_DIR, if any: the command's default) or none", metavar="PATH|latest|none")
    peak_tflops: float = option(DEFAULT_PEAK_TFLOPS, "the accelerator's peak, for MFU", metavar="X")

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}")
        if self.reference not in ("auto", "online", "precompute"):
            raise ValueError("reference must be auto, online or precompute")
        if self.reference == "online" and not self.use_lora:
            raise ValueError("an online reference needs LoRA (adapter disabled); use reference='precompute'")
        if self.lr_scheduler not in ("constant", "linear", "cosine"):
            raise ValueError("lr_scheduler must be constant, linear or cosine")
        if self.dtype not in ("auto", "bfloat16", "float32"):
            raise ValueError("dtype must be auto, bfloat16 or float32")

    @property
    def reference_mode(self) -> str:
        if self.reference == "auto":
            return "online" if self.use_lora else "precompute"
        return self.reference


#: What the hub accepts as a model id: ``name`` or ``org/name`` (letters, digits, ``-_.``).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def check_model(model: str) -> None:
    """A model that is neither a folder here nor spelled like a hub id (``org/name``) is refused in one line,
    before a hub lookup would fail with a traceback (called once the data has been read)."""
    if not model:
        raise ValueError("no model: pass --model (the SFT model: HF id or folder)")
    if not Path(model).expanduser().is_dir() and not _HUB_ID.fullmatch(model):
        raise FileNotFoundError(f"--model {model}: no such model folder (and not a hub id like org/name)")
