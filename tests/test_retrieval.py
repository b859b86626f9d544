"""Retrieval: document order, finding the relevant chunk (MiniLM and BM25), embedding once, caching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lr_eval.embed import CachedEmbedder, LocalEmbedder, normalise
from lr_eval.reward.chunking import Chunk, chunk_text, minilm_path
from lr_eval.reward.retrieval import Retriever, bm25_terms

TOPICS = [
    "The Amazon rainforest covers much of the Amazon basin in South America and hosts millions of insect species.",
    "Photosynthesis converts light energy into chemical energy; chlorophyll in the leaves absorbs red and blue light.",
    "The Treaty of Westphalia in 1648 ended the Thirty Years' War and reshaped the map of central Europe.",
    "A sourdough starter is a fermented mixture of flour and water that leavens bread with wild yeast.",
    "The Apollo 11 mission landed Neil Armstrong and Buzz Aldrin on the Moon in July 1969.",
    "Interest rates set by a central bank influence mortgage costs, savings and inflation across the economy.",
    "Beethoven composed nine symphonies; the ninth ends with a choral setting of Schiller's Ode to Joy.",
    "Glaciers carve U-shaped valleys as the moving ice grinds the bedrock beneath it over thousands of years.",
]
QUERIES = {
    "Who walked on the Moon in 1969?": 4,
    "How does bread rise with wild yeast?": 3,
    "Which peace treaty ended the Thirty Years' War?": 2,
}
ZH_TOPICS = ["长城是中国古代修建的军事防御工程，全长两万多公里。", "熊猫主要生活在四川的竹林里，以竹子为食。",
             "茶叶起源于中国，绿茶和红茶的制作工艺不同。", "黄河是中国第二长河，被称为中华民族的母亲河。"]


def make_chunks(texts: list[str]) -> list[Chunk]:
    chunks, pos = [], 0
    for i, t in enumerate(texts):
        chunks.append(Chunk(i, t, pos, pos + len(t), len(t.split())))
        pos += len(t) + 1
    return chunks


class Counting:
    """A deterministic fake embedder that records what it was asked to embed."""

    name = "counting:v1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        vecs = np.zeros((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                vecs[i, sum(map(ord, w)) % 8] += 1
        return normalise(vecs)


@pytest.fixture(scope="module")
def minilm() -> LocalEmbedder:
    return LocalEmbedder()


def test_minilm_finds_the_relevant_chunk_in_document_order(minilm: LocalEmbedder) -> None:
    chunks = make_chunks(TOPICS)
    r = Retriever.build(chunks, minilm)
    assert r.embedded_tokens > 100                                  # the chunks, embedded at build
    results = r.top_k(list(QUERIES), k=3)
    for (query, want), got in zip(QUERIES.items(), results, strict=True):
        assert want in got, query
        assert got == sorted(got) and len(got) == 3                 # document order, not rank order
    [[best]] = r.top_k(["Who walked on the Moon in 1969?"], k=1)
    assert best == 4


def test_bm25_finds_the_relevant_chunk_english_and_chinese() -> None:
    r = Retriever.build(make_chunks(TOPICS), None)
    assert r.embedded_tokens == 0
    for (query, want), got in zip(QUERIES.items(), r.top_k(list(QUERIES), k=2), strict=True):
        assert want in got and got == sorted(got), query
    zh = Retriever.build(make_chunks(ZH_TOPICS), None)
    assert zh.top_k(["熊猫吃什么？", "黄河为什么叫母亲河"], k=1) == [[1], [3]]
    assert "熊猫" in bm25_terms("熊猫吃竹子") and "gpt" in bm25_terms("用GPT-4o评测")


def test_real_chunks_end_to_end_with_bm25() -> None:
    from transformers import AutoTokenizer

    doc = "\n\n".join(TOPICS * 3)
    chunks = chunk_text(doc, 24, AutoTokenizer.from_pretrained(minilm_path()))
    r = Retriever.build(chunks, None)
    [hits] = r.top_k(["Neil Armstrong Buzz Aldrin Moon landing"], k=5)
    assert hits == sorted(hits) and any("Armstrong" in chunks[i].text for i in hits)


def test_k_larger_than_chunks_ties_and_empty() -> None:
    chunks = make_chunks(TOPICS[:3])
    r = Retriever.build(chunks, Counting())
    assert r.top_k(["anything", "else"], k=10) == [[0, 1, 2], [0, 1, 2]]
    assert r.top_k(["x"], k=0) == [[]]
    same = Retriever.build(make_chunks(["alpha beta"] * 6), Counting())
    assert same.top_k(["alpha"], k=3) == [[0, 1, 2]]               # ties go to the earlier chunk
    empty = Retriever.build([], Counting())
    assert empty.top_k(["q1", "q2"], k=5) == [[], []] and empty.embedded_tokens == 0
    assert Retriever.build([], None).top_k(["q"]) == [[]]


def test_chunk_texts_are_embedded_once() -> None:
    emb = Counting()
    r = Retriever.build(make_chunks(TOPICS), emb)
    assert emb.calls == [TOPICS]
    for q in QUERIES:
        r.top_k([q], k=5)
    assert len(emb.calls) == 1 + len(QUERIES) and all(len(c) == 1 for c in emb.calls[1:])


def test_cache_makes_a_second_build_embed_nothing(tmp_path: Path, minilm: LocalEmbedder) -> None:
    path = tmp_path / "embeddings.sqlite"
    chunks = make_chunks(TOPICS)
    first = Retriever.build(chunks, CachedEmbedder(minilm, path))
    assert first.embedded_tokens > 100
    inner = Counting()
    inner.name = minilm.name                                        # same vectors' name, a spy underneath
    cached = CachedEmbedder(inner, path)                            # a new run over the same cache file
    second = Retriever.build(chunks, cached)
    assert inner.calls == [] and second.embedded_tokens == 0 and cached.hits == len(TOPICS)
    np.testing.assert_array_equal(second._matrix, first._matrix)
    assert first.top_k([q for q in QUERIES if "bread" in q], k=1) == [[3]]
