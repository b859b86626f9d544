"""Constrained decoding and verdict probabilities for the in-process transformers backend.

The grammar of a request's answer format (`lr_eval.formats`) is enforced with llguidance: its matcher
computes, at every step, the tokens that keep the answer inside the grammar, and a transformers logits
processor masks the rest. Why llguidance: a dependency-free wheel (no triton, no torch build to match),
masks in about 2 ms over a 49k vocabulary on one CPU core, rules bounded in *tokens* (`[max_tokens=N]`), so
the rationale bound that guarantees the verdict within max_tokens is exact; vLLM and SGLang ship it as a
structured-output backend too.
"""

from __future__ import annotations

import inspect
import math
import threading
from typing import Any

import numpy as np

_TOKENIZERS: dict[int, Any] = {}
_LOCK = threading.Lock()


def ll_tokenizer(tokenizer: Any) -> Any:
    """The llguidance view of a Hugging Face fast tokenizer (built once per tokenizer: ~2 s)."""
    import llguidance.hf

    with _LOCK:
        key = id(tokenizer)
        if key not in _TOKENIZERS:
            _TOKENIZERS[key] = (tokenizer, llguidance.hf.from_tokenizer(tokenizer))
        return _TOKENIZERS[key][1]


def matcher(tokenizer: Any, lark: str) -> Any:
    """A fresh llguidance matcher for one answer; a grammar error is a bug in a declaration, so it raises."""
    from llguidance import LLMatcher

    m = LLMatcher(ll_tokenizer(tokenizer), LLMatcher.grammar_from_lark(lark), log_level=0)
    if m.is_error():
        raise ValueError(f"answer grammar rejected by llguidance: {m.get_error()}")
    return m


def allowed_tokens(m: Any, size: int) -> np.ndarray:
    """Boolean mask of the `size` token ids the matcher allows next (ids past the tokenizer's: never)."""
    bits = np.unpackbits(np.frombuffer(m.compute_bitmask(), dtype=np.uint8), bitorder="little").astype(bool)
    if bits.size < size:
        bits = np.concatenate([bits, np.zeros(size - bits.size, dtype=bool)])
    return bits[:size]


def logits_processor(m: Any, eos_id: int) -> Any:
    """A transformers LogitsProcessor that keeps a single-sequence generation inside the matcher's grammar."""
    import torch
    from transformers import LogitsProcessor

    class GrammarProcessor(LogitsProcessor):
        def __init__(self) -> None:
            self.steps = 0

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            if self.steps:
                m.consume_token(int(input_ids[0, -1]))
            self.steps += 1
            if m.is_error():  # cannot happen with tokens it allowed; end the answer rather than write garbage
                allowed = np.zeros(scores.shape[-1], dtype=bool)
                allowed[eos_id] = True
            else:
                allowed = allowed_tokens(m, scores.shape[-1])
            mask = torch.from_numpy(allowed).to(scores.device)
            return scores.masked_fill(~mask, -math.inf)

    return GrammarProcessor()


def rating_logprobs(model: Any, tokenizer: Any, prompt_ids: Any, new_ids: list[int],
                    ratings: tuple[int, ...]) -> dict[str, float] | None:
    """{rating: log-probability} of each valid rating written at the verdict position of a generated answer.

    Exact for ratings of any number of tokens: the answer up to its last `[[` is run once, then every
    candidate `r]]` is scored after it (a batch over a copy of that state), so "1" and "10" are told apart
    by what follows. None when the answer has no `[[`.
    """
    import torch

    text = tokenizer.decode(new_ids, skip_special_tokens=True)
    at = text.rfind("[[")
    if at < 0:
        return None
    digits_at = at + 2
    k = 0  # generated tokens that end at or before the verdict's digits
    while k < len(new_ids) and len(tokenizer.decode(new_ids[:k + 1], skip_special_tokens=True)) <= digits_at:
        k += 1
    lead = text[len(tokenizer.decode(new_ids[:k], skip_special_tokens=True)):digits_at]
    conts = [tokenizer.encode(f"{lead}{r}]]", add_special_tokens=False) for r in ratings]
    prefix = torch.cat([prompt_ids[0], torch.tensor(new_ids[:k], dtype=torch.long)]).unsqueeze(0).to(model.device)
    width = max(len(c) for c in conts)
    with torch.no_grad():
        out = model(prefix, use_cache=True)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        past = out.past_key_values
        past.batch_repeat_interleave(len(conts))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        batch = torch.tensor([c + [pad] * (width - len(c)) for c in conts], dtype=torch.long, device=model.device)
        mask = torch.ones(len(conts), prefix.shape[1] + width, dtype=torch.long, device=model.device)
        # transformers 5 names the cache argument `cache`; 4.x `past_key_values`
        cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        rest = torch.log_softmax(model(batch, attention_mask=mask, **{cache_arg: past}).logits.float(), dim=-1)
    out_lp: dict[str, float] = {}
    for j, (r, c) in enumerate(zip(ratings, conts, strict=True)):
        lp = float(first[c[0]])
        for t in range(1, len(c)):
            lp += float(rest[j, t - 1, c[t]])
        out_lp[str(r)] = lp
    return out_lp
