"""Top-k chunk retrieval for faithfulness: which passages of the context a statement is judged against.

The chunks are embedded once when the Retriever is built; every statement of
every response to that context is then a matrix product. Without an embedder
it falls back to BM25 (rank_bm25) over a CJK-aware tokenisation. Results come
back in document order, as the judge is shown them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from lr_eval.embed import Embedder, embed_counted, normalise

from .chunking import Chunk

# Han, kana and CJK symbols: no spaces, so each character and each adjacent pair is a term.
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]+")
_WORD = re.compile(r"[^\W_]+")


def bm25_terms(text: str) -> list[str]:
    """BM25 terms: lower-cased words for spaced scripts; characters and character bigrams for CJK runs."""
    text = unicodedata.normalize("NFKC", text).lower()
    terms: list[str] = []
    pos = 0
    for m in _CJK_RUN.finditer(text):
        terms.extend(_WORD.findall(text, pos, m.start()))
        run = m.group()
        terms.extend(run)
        terms.extend(run[i:i + 2] for i in range(len(run) - 1))
        pos = m.end()
    terms.extend(_WORD.findall(text, pos))
    return terms


class Retriever:
    """Finds, for each query, the k chunks most similar to it (cosine, or BM25 without an embedder)."""

    def __init__(self, chunks: Sequence[Chunk], embedder: Embedder | None,
                 matrix: np.ndarray | None, bm25: object | None, embedded_tokens: int):
        self.chunks = list(chunks)
        self.embedder = embedder
        self.embedded_tokens = embedded_tokens
        self._matrix = matrix
        self._bm25 = bm25
        self._order = np.argsort([c.index for c in self.chunks], kind="stable")

    @classmethod
    def build(cls, chunks: list[Chunk], embedder: Embedder | None) -> Retriever:
        """Index the chunks: embed their texts once (or build BM25 statistics when embedder is None)."""
        chunks = list(chunks)
        if not chunks:
            return cls(chunks, embedder, None, None, 0)
        if embedder is None:
            from rank_bm25 import BM25Plus

            # BM25+ keeps idf positive for terms found in half the chunks or more, which
            # BM25Okapi zeroes; that matters for short contexts with only a few chunks.
            corpus = [bm25_terms(c.text) or [""] for c in chunks]
            return cls(chunks, None, None, BM25Plus(corpus), 0)
        matrix, tokens = embed_counted(embedder, [c.text for c in chunks])
        if matrix.shape[0] != len(chunks):
            raise ValueError(f"embedder {embedder.name} returned {matrix.shape[0]} vectors for {len(chunks)} chunks")
        return cls(chunks, embedder, normalise(matrix), None, tokens)  # cosine even for raw vectors

    def scores(self, queries: list[str]) -> np.ndarray:
        """Similarity of every query to every chunk, shape [len(queries), len(chunks)]."""
        if not queries or not self.chunks:
            return np.zeros((len(queries), len(self.chunks)), dtype=np.float32)
        if self._bm25 is not None:
            bm25 = self._bm25
            # the ignore below: _bm25 is typed object (rank_bm25 is imported lazily); here it is a BM25Plus
            return np.stack([np.asarray(bm25.get_scores(bm25_terms(q)), dtype=np.float32)  # type: ignore[attr-defined]
                             for q in queries])
        assert self.embedder is not None and self._matrix is not None
        qvecs, tokens = embed_counted(self.embedder, list(queries))
        self.embedded_tokens += tokens
        return normalise(qvecs) @ self._matrix.T

    def top_k(self, queries: list[str], k: int = 5) -> list[list[int]]:
        """Per query, the `Chunk.index` of its k best chunks, in document order (all chunks if k >= their number).

        Ties go to the chunk earlier in the document, so results are deterministic.
        """
        if k <= 0 or not self.chunks:
            return [[] for _ in queries]
        sims = self.scores(queries)
        if k >= len(self.chunks):
            everything = [self.chunks[i].index for i in self._order]
            return [list(everything) for _ in queries]
        # Stable sort of the negated scores over chunks in document order: ties keep document order.
        ranked = np.argsort(-sims[:, self._order], axis=1, kind="stable")[:, :k]
        return [sorted(self.chunks[self._order[j]].index for j in row) for row in ranked]
