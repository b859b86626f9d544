"""Chunking: size limits, no cut inside a word (English, Chinese, byte-level BPE), coverage, speed."""

from __future__ import annotations

import random

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from lr_eval.reward import chunking
from lr_eval.reward.chunking import Chunk, chunk_text, is_cjk, load_tokenizer, minilm_path, position_label

EN = (
    "LongReward scores a response on four dimensions. Helpfulness and logicality see only the question "
    "and the response! Faithfulness extracts factual statements, retrieves supporting passages and asks "
    "whether each statement is supported. Completeness extracts the relevant information from every chunk "
    "of the context, then asks how much of it the response covers.\n\nThe reward is the mean of the four "
    "scores. It's computed by an off-the-shelf judge (e.g. GLM-4), with chain-of-thought before the verdict; "
    "parse failures are counted, never silently scored. "
) * 6

ZH = (
    "长上下文大模型在处理长文档时经常出现幻觉。本文提出了一种基于人工智能反馈的方法，称为LongReward，"
    "它从有用性、逻辑性、忠实性和完整性四个维度评估回答。实验表明，该方法显著提升了模型在长上下文任务上的表现！"
    "“我们相信”，作者说，“这是一个重要的进展。”评测使用GPT-4o作为裁判模型。"
) * 6


@pytest.fixture(scope="module")
def minilm():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())


@pytest.fixture(scope="module")
def byte_bpe() -> Tokenizer:
    """A tiny byte-level BPE trained here: Chinese characters become several tokens with one span."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([EN[:600], ZH[:120]], trainer)
    return tok


def n_tokens(tokenizer, text: str) -> int:
    return len(chunking.token_spans(text, tokenizer))


def check_invariants(text: str, chunks: list[Chunk], size: int, tokenizer=None) -> None:
    """The contract of chunk_text: exact slices, in order, only whitespace between, size unless one word.

    With `tokenizer`, an oversize chunk need only have no allowed cut at any token start inside it
    (byte-level BPE tokens can straddle two characters, which glues them); without, it must be one word.
    """
    assert [c.index for c in chunks] == list(range(len(chunks)))
    if tokenizer is not None:
        spans = chunking.token_spans(text, tokenizer)
        straddled = {p for a, b in spans for p in range(a + 1, b)}
    pos = 0
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert c.text and c.text == c.text.strip()
        assert text[pos:c.start].strip() == ""          # nothing but whitespace dropped
        assert c.start >= pos
        pos = c.end
        if c.n_tokens > size and tokenizer is None:      # only a single word may exceed the size
            assert not any(ch.isspace() or is_cjk(ch) for ch in c.text), c.text
        elif c.n_tokens > size:
            inside = {a for a, _ in spans if c.start < a < c.end}
            assert not any(chunking.boundary_kind(text, p) is not None for p in inside - straddled), c.text
    assert text[pos:].strip() == ""
    for a, b in zip(chunks, chunks[1:], strict=False):  # every cut is at a word boundary
        p = b.start
        assert text[a.end:p].strip() == ""
        assert p > a.end or is_cjk(text[p - 1]) or is_cjk(text[p]), (text[p - 10:p], text[p:p + 10])


@pytest.mark.parametrize("size", [8, 16, 128])
def test_english_chunks_respect_size_and_words(minilm, size: int) -> None:
    chunks = chunk_text(EN, size, minilm)
    check_invariants(EN, chunks, size)
    assert all(c.n_tokens <= size for c in chunks)
    assert sum(c.n_tokens for c in chunks) == n_tokens(minilm, EN)
    # Words are never split: the chunks' words are exactly the document's words.
    assert [w for c in chunks for w in c.text.split()] == EN.split()
    assert "It's" in " ".join(c.text for c in chunks).split() and "off-the-shelf" in EN


@pytest.mark.parametrize("size", [8, 32])
def test_chinese_chunks_cut_between_characters_only(minilm, size: int) -> None:
    chunks = chunk_text(ZH, size, minilm)
    check_invariants(ZH, chunks, size)
    assert all(c.n_tokens <= size for c in chunks)
    assert "".join(c.text for c in chunks) == ZH             # no spaces in the text: nothing dropped
    for c in chunks:
        assert c.text[0] not in "。，、！？”」", c.text            # punctuation stays with its sentence
        assert c.text[-1] not in "“「", c.text
    words = {w for c in chunks for w in ("LongReward", "GPT-4o") if w in c.text}
    assert words == {"LongReward", "GPT-4o"}                  # Latin words inside CJK text stay whole


def test_byte_level_bpe_never_splits_a_character(byte_bpe: Tokenizer) -> None:
    spans = chunking.token_spans(ZH, byte_bpe)
    assert len(spans) > len(set(spans))                       # several tokens share one character's span
    for size in (3, 7, 40):
        chunks = chunk_text(ZH + "\n\n" + EN, size, byte_bpe)
        check_invariants(ZH + "\n\n" + EN, chunks, size, byte_bpe)
        if size == 40:
            assert all(c.n_tokens <= size for c in chunks)
        assert sum(c.n_tokens for c in chunks) == n_tokens(byte_bpe, ZH + "\n\n" + EN)


def test_word_longer_than_chunk_stands_alone(minilm) -> None:
    long_word = "pneumonoultramicroscopicsilicovolcanoconiosis"  # WordPiece: > 4 tokens (but < 100 chars: [UNK])
    text = f"one two three four {long_word} five six. 长词测试"
    chunks = chunk_text(text, 4, minilm)
    check_invariants(text, chunks, 4)
    big = [c for c in chunks if c.n_tokens > 4]
    assert [c.text for c in big] == [long_word]
    assert [w for c in chunks for w in c.text.split()][:7] == text.split()[:7]


def test_prefers_sentence_and_paragraph_ends(minilm) -> None:
    sentences = " ".join(f"The item number {i} is red." for i in range(60))
    chunks = chunk_text(sentences, 32, minilm)
    check_invariants(sentences, chunks, 32)
    assert all(c.text.endswith(".") for c in chunks)          # a sentence end is always in the tail window
    paras = "\n\n".join(f"Para {i} starts. It has two sentences here" for i in range(30))
    chunks = chunk_text(paras, 23, minilm)                    # tail window: a paragraph end and a sentence end
    check_invariants(paras, chunks, 23)
    assert all(c.text.endswith("here") for c in chunks)       # the paragraph wins over the later sentence end


def test_raw_tokenizer_with_truncation_is_not_truncated_or_mutated(minilm) -> None:
    raw = Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    assert raw.truncation is not None                         # MiniLM's file truncates at 128
    chunks = chunk_text(EN, 64, raw)
    check_invariants(EN, chunks, 64)
    assert sum(c.n_tokens for c in chunks) == n_tokens(minilm, EN) > 128
    assert raw.truncation is not None


def test_tokenizer_without_offsets_uses_word_spans(minilm) -> None:
    class Slow:
        """Stands for a Python tokenizer (e.g. GLM-4's tiktoken one): no offset mapping."""

        is_fast = False

        def __call__(self, texts, add_special_tokens=False):
            return minilm(texts, add_special_tokens=add_special_tokens)

    for text in (EN, ZH):
        chunks = chunk_text(text, 16, Slow())
        check_invariants(text, chunks, 16)
        assert all(c.n_tokens <= 16 for c in chunks)
        assert abs(sum(c.n_tokens for c in chunks) - n_tokens(minilm, text)) <= 0.02 * n_tokens(minilm, text)


def test_edge_cases(minilm) -> None:
    assert chunk_text("", 8, minilm) == []
    assert chunk_text(" \n\t ", 8, minilm) == []
    [only] = chunk_text("  hello world  ", 8, minilm)
    assert (only.text, only.start, only.end, only.n_tokens) == ("hello world", 2, 13, 2)
    with pytest.raises(ValueError):
        chunk_text("x", 0, minilm)


def test_position_label() -> None:
    assert position_label(Chunk(0, "x", 0, 370, 1), 1000) == "0%–37%"
    assert position_label(Chunk(1, "x", 370, 561, 1), 1000) == "37%–56%"
    assert position_label(Chunk(2, "x", 561, 999, 1), 1000) == "56%–100%"
    with pytest.raises(ValueError):
        position_label(Chunk(0, "x", 0, 1, 1), 0)


def test_default_tokenizer_falls_back_to_minilm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunking, "_embedded_tokenizer_folder", lambda: None)
    monkeypatch.setattr(chunking, "_embedded_gguf", lambda: None)
    load_tokenizer.cache_clear()
    try:
        tok = load_tokenizer(None)
        assert tok.is_fast and "minilm" in str(tok.name_or_path).lower()
        assert load_tokenizer(None) is tok
    finally:
        load_tokenizer.cache_clear()


def test_64k_token_document_is_fast(minilm, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast by construction, counted rather than timed: one tokenization per call, and each token boundary
    looked at once (no re-tokenizing of a chunk, no rescanning of the text per chunk)."""
    from lr_eval.reward import chunking

    calls = {"token_spans": 0, "boundary_kind": 0}
    tokens: list[int] = []

    def counted(name: str):
        real = getattr(chunking, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            out = real(*args, **kwargs)
            if name == "token_spans":
                tokens.append(len(out))
            return out
        return wrapper

    for name in calls:
        monkeypatch.setattr(chunking, name, counted(name))
    rng = random.Random(0)
    vocab = EN.split() + list("长上下文模型评估方法")
    words = []
    for i in range(52_000):
        words.append(rng.choice(vocab))
        if i % 17 == 16:
            words[-1] += "."
        if i % 400 == 399:
            words[-1] += "\n\n"
    text = " ".join(words)
    small = chunk_text(text, 128, minilm)
    assert calls["token_spans"] == 1 and calls["boundary_kind"] < tokens[0], (calls, tokens)
    large = chunk_text(text, 4096, minilm)
    total = sum(c.n_tokens for c in small)
    assert total >= 64_000
    assert sum(c.n_tokens for c in large) == total
    assert total / 128 <= len(small) <= 1.3 * total / 128
    check_invariants(text, small, 128)


def test_scorer_names_its_default_tokenizer_after_loading_it(embedded_model: str) -> None:
    """The label says which default loaded, also when it is asked for after the tokenizer was loaded (the
    lm-eval tasks ask only at the end): never the machine path of the loaded files."""
    from lr_eval.reward.scorer import LongRewardScorer

    scorer = LongRewardScorer(None, embedder=None)  # type: ignore[arg-type]  # no judge call is made
    assert scorer.tokenizer is not None
    assert scorer.tokenizer_label == chunking.tokenizer_label(None) == chunking.EMBEDDED_TOKENIZER
