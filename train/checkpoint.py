"""Checkpoints that lm-eval can load and that a run can resume from.

Layout of ``<output_dir>/checkpoint-<step>/``:

* the model in HF format: the LoRA adapter (``adapter_config.json`` + ``adapter_model.safetensors``,
  for lm-eval's ``peft=`` argument) or, for full fine-tuning, the whole model; plus the tokenizer;
* ``training_state.pt``: optimizer (unsharded, keyed by parameter name), scheduler, RNG states;
  under DeepSpeed the optimizer is in ``deepspeed/`` instead (its own sharded format);
* ``trainer_state.json``: step, pairs consumed, config, data fingerprint;
* ``reference_logps.pt``: the precomputed reference log-probs, when the run uses them (for full
  fine-tuning they cannot be recomputed once the weights have moved).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import torch

TRAINER_STATE = "trainer_state.json"
TRAINING_STATE = "training_state.pt"
REFERENCE_LOGPS = "reference_logps.pt"
DEEPSPEED_STATE = "deepspeed"  # DeepSpeed's own sharded optimizer state (DeepSpeed runs only)
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Checkpoint directories of a run, oldest first (only complete ones: with a trainer state)."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _CKPT_RE.match(child.name)
        if match and (child / TRAINER_STATE).is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def resolve_resume(resume_from: str | None, output_dir: str | Path) -> Path | None:
    """``"latest"`` → newest checkpoint of ``output_dir`` (None if there is none); else the path itself."""
    if resume_from is None:
        return None
    if resume_from == "latest":
        ckpts = list_checkpoints(output_dir)
        return ckpts[-1] if ckpts else None
    path = Path(resume_from)
    if not (path / TRAINER_STATE).is_file():
        raise FileNotFoundError(f"not a training checkpoint (no {TRAINER_STATE}): {path}")
    return path


def prune_checkpoints(output_dir: str | Path, keep: int | None) -> None:
    if keep is None or keep <= 0:
        return
    for path in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def write_trainer_state(directory: Path, state: dict[str, Any]) -> None:
    (directory / TRAINER_STATE).write_text(json.dumps(state, indent=2, default=str) + "\n")


def read_trainer_state(directory: Path) -> dict[str, Any]:
    return json.loads((directory / TRAINER_STATE).read_text())


def load_adapter_weights(model: torch.nn.Module, directory: Path) -> None:
    """Load a saved LoRA adapter into the ``default`` adapter of an existing PeftModel.

    Through torch's distributed state-dict API, so the same call fills plain parameters (one
    process, DDP) and FSDP2-sharded ones (each rank keeps its shard of the full tensors).
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    safetensors_file = directory / "adapter_model.safetensors"
    if safetensors_file.is_file():
        from safetensors.torch import load_file

        weights = load_file(str(safetensors_file))
    else:
        weights = torch.load(directory / "adapter_model.bin", map_location="cpu", weights_only=True)
    # The file names the weights without the adapter name (peft's convention); the model with it.
    names = {key.replace(".default.", "."): key for key, _ in model.named_parameters() if "lora_" in key}
    unexpected = sorted(set(weights) - set(names))
    missing = sorted(set(names) - set(weights))
    if unexpected or missing:
        raise RuntimeError(f"adapter in {directory} does not match the model: unexpected keys {unexpected[:5]}, "
                           f"missing keys {missing[:5]}")
    full = {names[key]: value for key, value in weights.items()}
    set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True, strict=False))
