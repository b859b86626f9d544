"""Embedders: local MiniLM (offline), OpenAI-compatible endpoint with retries, the SQLite cache, the factory."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from lr_eval.embed import (
    CachedEmbedder,
    Embedder,
    EmbeddingCache,
    EmbeddingError,
    LocalEmbedder,
    OpenAIEmbedder,
    build_embedder,
    text_key,
)
from lr_eval.testing.scripted_server import FaultPlan, ScriptedServer, hash_embedding

TEXTS = ["the cat sat on the mat", "a dog barked at the mailman", "stock markets fell sharply today",
         "the cat slept on the mat", "猫坐在垫子上"]


def expected(texts: list[str], dim: int = 16) -> np.ndarray:
    raw = np.asarray([hash_embedding(t, dim) for t in texts], dtype=np.float32)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    return raw / np.where(norms > 0, norms, 1)


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    return LocalEmbedder()


def test_local_minilm_offline(local: LocalEmbedder) -> None:
    assert isinstance(local, Embedder) and local.name == "minilm:all-MiniLM-L6-v2"
    vecs, tokens = local.embed_counted(TEXTS)
    assert vecs.shape == (5, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 3] > sims[0, 1] and sims[0, 3] > sims[0, 2]   # the two cat sentences are closest
    assert tokens >= sum(len(t.split()) for t in TEXTS[:4]) and local.tokens == tokens
    assert local.embed([]).shape == (0, 384)


def test_openai_embedder_batches_and_counts_usage() -> None:
    with ScriptedServer() as srv:
        emb = OpenAIEmbedder("embedding-2", base_url=srv.base_url, batch_size=2, concurrency=2)
        vecs = emb.embed(TEXTS)
        assert emb.name == "openai:embedding-2"
        np.testing.assert_allclose(vecs, expected(TEXTS), atol=1e-6)
        assert srv.paid["embeddings"] == 3 and emb.requests == 3     # 5 texts in batches of 2
        assert emb.tokens == sum(len(t.split()) for t in TEXTS)       # the usage the server reported
        assert emb.embed([]).shape[0] == 0 and srv.paid["embeddings"] == 3


def test_openai_embedder_retries_429_honouring_retry_after_and_500() -> None:
    faults = FaultPlan(rate_429=1.0, retry_after=0.3, max_faults=1)
    with ScriptedServer(faults=faults) as srv:
        emb = OpenAIEmbedder("m", base_url=srv.base_url, backoff_base=0.001, max_retries=3)
        t0 = time.perf_counter()
        vecs = emb.embed(TEXTS[:2])
        elapsed = time.perf_counter() - t0
        np.testing.assert_allclose(vecs, expected(TEXTS[:2]), atol=1e-6)
        assert srv.fault_counts["429"] == 1 and emb.retries == 1 and emb.requests == 2
        assert elapsed >= 0.3                                            # waited as long as Retry-After said
    with ScriptedServer(faults=FaultPlan(rate_500=1.0, max_faults=2)) as srv:
        emb = OpenAIEmbedder("m", base_url=srv.base_url, backoff_base=0.001, max_retries=3)
        emb.embed(TEXTS[:1])
        assert srv.fault_counts["500"] == 2 and emb.retries == 2
    with ScriptedServer(faults=FaultPlan(rate_500=1.0, max_faults=5)) as srv:
        emb = OpenAIEmbedder("m", base_url=srv.base_url, backoff_base=0.001, max_retries=2)
        with pytest.raises(EmbeddingError, match="gave up after 3 attempts"):
            emb.embed(TEXTS[:1])


def test_openai_embedder_bad_key_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_EMBED_KEY", "sk-wrong")
    with ScriptedServer(api_key="sk-right") as srv:
        emb = OpenAIEmbedder("m", base_url=srv.base_url, api_key_env="MY_EMBED_KEY")
        with pytest.raises(EmbeddingError, match="MY_EMBED_KEY"):
            emb.embed(TEXTS[:1])
        assert emb.requests == 1
        monkeypatch.setenv("MY_EMBED_KEY", "sk-right")
        assert OpenAIEmbedder("m", base_url=srv.base_url, api_key_env="MY_EMBED_KEY").embed(["x"]).shape == (1, 16)


def test_cache_embeds_each_text_once_across_runs(tmp_path: Path) -> None:
    path = tmp_path / "emb.sqlite"
    with ScriptedServer() as srv:
        first = CachedEmbedder(OpenAIEmbedder("m", base_url=srv.base_url), path)
        a = first.embed(TEXTS + TEXTS[:2])                              # duplicates are embedded once
        assert first.misses == 5 and first.hits == 0 and srv.paid["embeddings"] == 1
        second = CachedEmbedder(OpenAIEmbedder("m", base_url=srv.base_url), path)   # a new run
        vecs, tokens = second.embed_counted(TEXTS)
        assert tokens == 0 and second.hits == 5 and second.misses == 0
        assert srv.paid["embeddings"] == 1                              # nothing sent
        np.testing.assert_array_equal(vecs, a[:5])
        other = CachedEmbedder(OpenAIEmbedder("other", base_url=srv.base_url), path)  # name is in the key
        other.embed(TEXTS[:1])
        assert other.misses == 1 and srv.paid["embeddings"] == 2
    cache = EmbeddingCache(path)
    assert len(cache) == 6 and set(cache.get_many("openai:m", [text_key(TEXTS[0]), "nope"])) == {text_key(TEXTS[0])}
    cache.close()


def test_build_embedder_specs(tmp_path: Path) -> None:
    assert build_embedder("bm25") is None
    assert isinstance(build_embedder("local"), LocalEmbedder) and build_embedder(None).name == "minilm:all-MiniLM-L6-v2"
    assert build_embedder("local:/models/bge-small-en/").name == "st:bge-small-en"
    emb = build_embedder("openai:text-embedding-3-small", base_url="http://x/v1", api_key_env="K", batch_size=8)
    assert isinstance(emb, OpenAIEmbedder)
    assert (emb.base_url, emb.api_key_env, emb.batch_size) == ("http://x/v1", "K", 8)
    cached = build_embedder("openai:m", cache=tmp_path / "c.sqlite")
    assert isinstance(cached, CachedEmbedder) and cached.name == "openai:m"
    for bad in ("glove", "openai", "openai:", "bm25:x"):
        with pytest.raises(ValueError, match="unknown embedder"):
            build_embedder(bad)
