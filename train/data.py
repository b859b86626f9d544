"""Preference data: reading the pairs JSONL and tokenizing prompt / chosen / rejected.

One JSON object per line with ``chosen`` and ``rejected`` (strings) and either ``prompt`` or
``context`` + ``question``.  Aliases of the released LongReward-10k data are accepted too:
``query`` for ``question``, ``win_response`` / ``lose_response`` for ``chosen`` / ``rejected``.
Errors name the file, the line and the field, because a 10k-line file with one bad line should not
cost a debugging session.

Tokenization follows TRL's rule so that both see the same token ids: tokenize the prompt alone and
prompt + response, and start the response where the two diverge (the common prefix of both
responses); plain-text responses get the EOS token appended, chat-formatted ones end with the
template's end-of-turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lr_eval.errors import UserError
from lr_eval.jsonl import InputError, read_lines

from .dpo_config import PromptFormat
from .packing import fit_pair

_ALIASES = {"question": ("question", "query"), "chosen": ("chosen", "win_response"),
            "rejected": ("rejected", "lose_response")}


class PreferenceDataError(InputError):
    """A malformed line in a preference JSONL file (the message names file, line and field)."""

    def __init__(self, message: str):
        UserError.__init__(self, message)


@dataclass(frozen=True)
class PreferenceExample:
    """One pair as read from the file; ``prompt`` is None when the line had context + question."""

    chosen: str
    rejected: str
    prompt: str | None = None
    context: str | None = None
    question: str | None = None
    source: str = "<memory>"
    line: int = 0

    def user_text(self) -> str:
        """The user turn: the prompt, or the context followed by the question."""
        if self.prompt is not None:
            return self.prompt
        return f"{self.context}\n\n{self.question}"


@dataclass(frozen=True)
class TokenizedPair:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    index: int = 0  # position in the source file (after nothing is dropped: the line order)


def _field(obj: dict, name: str, where: str) -> str | None:
    for key in _ALIASES.get(name, (name,)):
        if key in obj and obj[key] is not None:
            value = obj[key]
            if not isinstance(value, str):
                raise PreferenceDataError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
            return value
    return None


def _present(value: str | None, name: str, where: str) -> str:
    """A response field's value (``chosen`` or ``rejected``): given and not blank."""
    if value is None:
        raise PreferenceDataError(f"{where}: missing field {name!r}")
    if not value.strip():
        raise PreferenceDataError(f"{where}: field {name!r} is empty")
    return value


def parse_example(obj: object, source: str = "<memory>", line: int = 0) -> PreferenceExample:
    """Validate one decoded JSON line."""
    where = f"{source}:{line}"
    if not isinstance(obj, dict):
        raise PreferenceDataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    chosen, rejected = _field(obj, "chosen", where), _field(obj, "rejected", where)  # both type-checked first
    chosen, rejected = _present(chosen, "chosen", where), _present(rejected, "rejected", where)
    prompt = _field(obj, "prompt", where)
    context = _field(obj, "context", where)
    question = _field(obj, "question", where)
    if prompt is None:
        if context is None and question is None:
            raise PreferenceDataError(f"{where}: missing field 'prompt' (or 'context' + 'question')")
        if context is None:
            raise PreferenceDataError(f"{where}: field 'question' given without field 'context'")
        if question is None:
            raise PreferenceDataError(f"{where}: field 'context' given without field 'question'")
    return PreferenceExample(chosen, rejected, prompt, context, question, source, line)


def read_preference_jsonl(path: str | Path) -> list[PreferenceExample]:
    """All pairs of a JSONL file; blank lines are skipped, anything else malformed (a repeated ``id`` too) raises."""
    path = Path(path)
    examples = []
    ids: set[str] = set()
    for number, raw in read_lines(path):  # BOM, CRLF, a missing file or a folder as every reader does
        if isinstance(raw, InputError):
            raise raw
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            raise PreferenceDataError(f"{path}:{number}: invalid JSON ({err.msg} at column {err.colno})") from err
        examples.append(parse_example(obj, str(path), number))
        if isinstance(obj.get("id"), (str, int)):
            if str(obj["id"]) in ids:
                raise PreferenceDataError(f"{path}:{number}: field 'id': duplicate id {obj['id']!r} "
                                          "(each pair may appear once)")
            ids.add(str(obj["id"]))
    if not examples:
        raise PreferenceDataError(f"{path}: no preference pairs in the file")
    return examples


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def resolve_prompt_format(tokenizer, prompt_format: PromptFormat) -> Literal["chat", "raw"]:
    if prompt_format == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "raw"
    if prompt_format not in ("chat", "raw"):
        raise ValueError(f"prompt_format must be auto, chat or raw, got {prompt_format!r}")
    if prompt_format == "chat" and not getattr(tokenizer, "chat_template", None):
        raise ValueError("prompt_format='chat' but the tokenizer has no chat template")
    return prompt_format


def _ids(encoded) -> list[int]:
    ids = encoded["input_ids"] if not isinstance(encoded, list) else encoded
    return list(ids)


def tokenize_example(tokenizer, example: PreferenceExample, prompt_format: PromptFormat = "auto") -> TokenizedPair:
    """Token ids of prompt, chosen and rejected, split where prompt and prompt+response diverge."""
    fmt = resolve_prompt_format(tokenizer, prompt_format)
    user = example.user_text()
    if fmt == "chat":
        messages = [{"role": "user", "content": user}]

        def chat(msgs: list[dict], gen: bool) -> list[int]:
            out = tokenizer.apply_chat_template(msgs, tokenize=True, add_generation_prompt=gen, return_dict=True)
            return _ids(out)

        prompt_ids = chat(messages, True)
        full_chosen = chat(messages + [{"role": "assistant", "content": example.chosen}], False)
        full_rejected = chat(messages + [{"role": "assistant", "content": example.rejected}], False)
    else:
        eos = tokenizer.eos_token or ""
        chosen = example.chosen if example.chosen.endswith(eos) else example.chosen + eos
        rejected = example.rejected if example.rejected.endswith(eos) else example.rejected + eos
        prompt_ids = _ids(tokenizer(user))
        full_chosen = _ids(tokenizer(user + chosen))
        full_rejected = _ids(tokenizer(user + rejected))
    cut = min(_common_prefix(prompt_ids, full_chosen), _common_prefix(prompt_ids, full_rejected))
    return TokenizedPair(prompt_ids[:cut], full_chosen[cut:], full_rejected[cut:], example.line)


@dataclass
class PreparedData:
    pairs: list[TokenizedPair]
    dropped: list[tuple[int, str]]  # (line, reason)
    truncated: int  # pairs whose prompt was cut in the middle


def prepare_pairs(
    tokenizer,
    examples: list[PreferenceExample],
    max_length: int | None,
    prompt_format: PromptFormat = "auto",
) -> PreparedData:
    """Tokenize, truncate prompts (middle) to ``max_length``, drop pairs that cannot fit.

    ``max_length`` bounds each *unshared* sequence P + max(C, R), the length TRL and the paper
    quote.  A pair whose response alone reaches it is dropped (completions are never truncated).
    """
    pairs, dropped, truncated = [], [], 0
    for index, example in enumerate(examples):
        tok = tokenize_example(tokenizer, example, prompt_format)
        if not tok.chosen_ids or not tok.rejected_ids:
            dropped.append((example.line, "a response is empty after tokenization"))
            continue
        prompt = fit_pair(tok.prompt_ids, tok.chosen_ids, tok.rejected_ids, max_length)
        if prompt is None or not prompt:
            longest = max(len(tok.chosen_ids), len(tok.rejected_ids))
            dropped.append((example.line, f"response of {longest} tokens leaves no room in max_length={max_length}"))
            continue
        truncated += len(prompt) < len(tok.prompt_ids)
        pairs.append(TokenizedPair(prompt, tok.chosen_ids, tok.rejected_ids, index))
    return PreparedData(pairs, dropped, truncated)
