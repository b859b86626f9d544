"""Tiny, offline model + tokenizer builders for tests and the benchmark's ``--tiny`` mode.

Why a word-level tokenizer: "w17 w3 w99" tokenizes to known ids, so the same token ids can be fed
to our trainer and to TRL (which only takes text) without a hub download.
"""

from __future__ import annotations

from pathlib import Path

import torch

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def word_tokenizer(n_words: int, extra_words: tuple[str, ...] = ()):
    """PreTrainedTokenizerFast over ``<pad> <s> </s> <unk>`` + extra words + ``w0 .. w{n-1}``.

    Adds BOS to every encoding (like Llama tokenizers); ids of ``w{i}`` are ``len(SPECIALS) +
    len(extra_words) + i``.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for word in extra_words:
        vocab.setdefault(word, len(vocab))
    offset = len(vocab)
    vocab.update({f"w{i}": offset + i for i in range(n_words)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def tiny_llama_config(vocab_size: int, **overrides):
    from transformers import LlamaConfig

    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
    )
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


def tiny_llama(vocab_size: int, seed: int = 0, dtype: torch.dtype = torch.float32, **overrides):
    """A random-init 2-layer Llama (hidden 64, GQA 4:2) with SDPA attention."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    config = tiny_llama_config(vocab_size, **overrides)
    model = LlamaForCausalLM._from_config(config, attn_implementation="sdpa", dtype=dtype)
    return model


def save_tiny_model(directory: str | Path, n_words: int = 64, seed: int = 0, extra_words: tuple[str, ...] = ()):
    """Write a tiny model + tokenizer in HF format to ``directory`` (for from_pretrained paths)."""
    tokenizer = word_tokenizer(n_words, extra_words)
    model = tiny_llama(len(tokenizer), seed=seed)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


def write_tiny_pairs(path: str | Path, n_pairs: int, seed: int = 0, prompt_words: tuple[int, int] = (8, 24),
                     response_words: tuple[int, int] = (2, 6)) -> Path:
    """A preference JSONL over ``save_tiny_model``'s words: random prompts (w20..w63) and responses (w4..w19)."""
    import json
    import random

    rng = random.Random(seed)

    def words(low: int, high: int, span: tuple[int, int]) -> str:
        return " ".join(f"w{rng.randrange(low, high)}" for _ in range(rng.randrange(*span)))

    with Path(path).open("w") as fh:
        for _ in range(n_pairs):
            row = {"prompt": words(20, 64, prompt_words), "chosen": " " + words(4, 20, response_words),
                   "rejected": " " + words(4, 20, response_words)}
            fh.write(json.dumps(row) + "\n")
    return Path(path)
