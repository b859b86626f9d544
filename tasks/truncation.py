"""How long a task's prompt may be, and the model's tokenizer that measures it.

A task's prompt budget is ``--metadata max_length`` when given (the role of LongBench's ``model2maxlen.json``),
else derived from the model's context window; the value used is recorded in the results as
``configs.<task>.metadata.effective_max_length``. The tokenizer is the one the run's ``--model_args`` (merged
into the metadata by lm-eval) or ``--metadata tokenizer`` names.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from lr_eval.flags import truthy

from .lm_eval_adapter import note_in_results

#: The metadata key under which a task records the prompt budget (tokens) it truncated to: ``max_length`` when
#: given, else the default from the model's window (``configs.<task>.metadata.effective_max_length``).
EFFECTIVE_MAX_LENGTH = "effective_max_length"

#: Default cap on the model's input, in tokens (the paper's 64k), middle-truncated at load time.
DEFAULT_MAX_INPUT_TOKENS = 64_000

#: Model-args / metadata keys naming the tokenizer, in priority order (as lm-eval's RULER does).
TOKENIZER_KEYS = ("tokenizer", "pretrained", "model")


def tokenizer_name(metadata: Mapping[str, Any]) -> str | None:
    """The tokenizer named in the run's model args / metadata (``tokenizer``, ``pretrained``, ``model``)."""
    for key in TOKENIZER_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@functools.lru_cache(maxsize=4)
def model_tokenizer(name: str, trust_remote_code: bool) -> Any:
    """A Hugging Face tokenizer by name, loaded once per process."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)


def default_max_length(name: str, max_gen: int, trust_remote_code: bool = False) -> int:
    """Prompt budget when none is given: the model's context window minus the dataset's max new tokens."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attribute in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        window = getattr(text_config, attribute, None)
        if isinstance(window, int) and window > 0:
            return window - max_gen
    raise ValueError(f"cannot tell the context window of {name}; pass --metadata '{{\"max_length\": N}}'")


def prompt_tokenizer(metadata: dict[str, Any] | None, task: str) -> Any:
    """The model's tokenizer (model_args ``pretrained`` / metadata ``tokenizer``), as LongBench's loader finds it."""
    metadata = metadata or {}
    name = tokenizer_name(metadata)
    if name is None:
        raise ValueError(f"{task} middle-truncates prompts with the model's tokenizer: pass --model_args "
                         "pretrained=... or --metadata '{\"tokenizer\": \"...\"}'")
    return model_tokenizer(name, truthy(metadata.get("trust_remote_code")))


def prompt_budget(metadata: dict[str, Any] | None, max_new_tokens: int) -> int:
    """Prompt length cap in tokens: metadata ``max_length`` if given, else min(64k, model window - new tokens).

    ``max_length`` means the prompt budget, as in the LongBench tasks (the role of model2maxlen.json).
    """
    metadata = metadata or {}
    if metadata.get("max_length") not in (None, ""):
        limit = int(metadata["max_length"])
    else:
        limit = DEFAULT_MAX_INPUT_TOKENS
        name = tokenizer_name(metadata)
        if name is not None:
            trust = truthy(metadata.get("trust_remote_code"))
            limit = min(limit, default_max_length(name, max_new_tokens, trust))
    if limit <= 1:
        raise ValueError(f"prompt budget of {limit} tokens leaves no room for the prompt")
    note_in_results(EFFECTIVE_MAX_LENGTH, limit)
    return limit


def middle_truncate(text: str, tokenizer: Any, max_tokens: int) -> tuple[str, int]:
    """LongAlign (LongBench-Chat) middle truncation: keep the first and last int(max_tokens/2) tokens.

    Tokens are counted without special tokens, as LongAlign's eval.py does (LongBench's pred.py
    counts them: see longbench_data.middle_truncate). Returns the text and its original token count.
    """
    ids = tokenizer(text, truncation=False, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text, len(ids)
    half = int(max_tokens / 2)
    return (tokenizer.decode(ids[:half], skip_special_tokens=True)
            + tokenizer.decode(ids[-half:], skip_special_tokens=True)), len(ids)
