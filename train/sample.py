"""`lr-train sample`: N responses per long-context prompt from the policy.

Input JSONL: ``{"id", "context", "question"}`` per line (THUDM/LongReward-10k's ``idx`` / ``query``
are accepted for ``id`` / ``question``; other fields are ignored).  The policy sees one user turn,
``context + "\\n\\n" + question`` — the same text ``train/data.py`` trains on — either through an
OpenAI-compatible endpoint (``vllm serve`` in production) or in-process (transformers, one request
at a time: small runs).

Every request goes through the core ``JudgeClient``: cached, retried, counted.  Sample ``i`` of a
prompt is asked with ``seed = base_seed + i`` (temperature 1.0 by default), so each sample has its
own cache key and an interrupted run resumes from the cache without resending a finished sample.

A prompt longer than the policy's window minus ``--max-tokens`` (the window: ``--max-model-len``;
by default what ``vllm serve`` reports on GET /models, in-process the model's
``max_position_embeddings``) gets the middle of its *context* cut, LongBench style
(``decode(ids[:k/2]) + decode(ids[-k/2:])``, a space at the seam if neither side has one), the
question kept whole.  The output keeps the full context (the judge scores against the whole
document; DPO truncates to its own ``max_length``); ``truncated`` / ``context_tokens_cut`` say
what the policy saw.  Output JSONL, one line per prompt::

    {"id", "context", "question", "responses": [...], "seeds": [...], "finish_reasons": [...],
     "sampling": {"model", "n", "temperature", "top_p", "max_tokens", "seed", "max_prompt_tokens"},
     "prompt_tokens", "truncated", "context_tokens_cut", "failed"?: [{"seed", "error"}]}

or ``{"id", "line", "error"}`` for a bad input line or a prompt none of whose samples succeeded.
Each finished prompt is appended at once (and synced) with its ``input_key`` (a hash of the prompt
and the sampling settings); a rerun reuses the prompts whose key matches and retries failed samples;
at the end the file is rewritten in input order.  Prompts are streamed (``prompts_in_flight`` in
memory).  The output is also a valid ``lr-eval score`` input.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lr_eval.jsonl import (
    KEY_FIELD,
    InputError,
    JsonlRecords,
    ResumableJsonl,
    check_paths,
    content_key,
    iter_unique,
    read_jsonl,
    require,
    run_window,
)
from lr_eval.options import option
from lr_eval.types import ChatRequest, ChatResult

TEMPLATE_ID = "lr-train.sample"
TEMPLATE_VERSION = "1"  # bump when user_text() changes: it is part of every sample's cache key


def user_text(context: str, question: str) -> str:
    """The policy's user turn; identical to ``train.data.PreferenceExample.user_text``."""
    return f"{context}\n\n{question}"


# ---------------------------------------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prompt:
    """One long-context question of the input file."""

    id: str
    context: str
    question: str
    line: int = 0


def _first(rec: dict[str, Any], names: tuple[str, ...]) -> str:
    for name in names:
        if rec.get(name) is not None:
            return name
    return names[0]


def iter_prompts(path: str | Path) -> Iterator[tuple[int, Prompt | None, dict[str, Any] | None]]:
    """Stream (line, prompt, None) or (line, None, error record ``{"id", "line", "error"}``); a bad line never
    stops the rest, a repeated id is a bad line (the first is sampled)."""

    def parse(rec: dict[str, Any], n: int) -> tuple[str, Prompt]:
        pid = str(require(rec, _first(rec, ("id", "idx")), (str, int), path, n))
        context = require(rec, "context", str, path, n)
        question = require(rec, _first(rec, ("question", "query")), str, path, n)
        return pid, Prompt(pid, context, question, n)

    def error_id(rec: dict[str, Any]) -> str | None:
        rid = rec.get("id", rec.get("idx"))
        return None if rid is None else str(rid)

    return iter_unique(path, parse, error_id)


# ---------------------------------------------------------------------------------------------------------
# middle truncation
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fitted:
    """A prompt made to fit the window: the context the policy sees and its rendered token count."""

    context: str | None          # None: cannot fit (the question alone is too long)
    tokens: int | None           # prompt tokens as the policy counts them (None: no tokenizer)
    truncated: bool = False
    cut_tokens: int = 0          # context tokens removed from the middle
    error: str | None = None


def middle_cut(ids: list[int], keep: int) -> tuple[list[int], list[int]]:
    """Head and tail of ``ids`` keeping ``keep`` tokens (half each, the tail gets the odd one)."""
    keep = max(0, min(keep, len(ids)))
    head = keep // 2
    tail = keep - head
    return ids[:head], (ids[len(ids) - tail:] if tail else [])


def join_cut(head: str, tail: str) -> str:
    """Head + tail of a cut context; one space between them when neither side has whitespace at the seam
    (a SentencePiece decode drops the tail's leading space, which would glue two words together)."""
    if head and tail and not head[-1].isspace() and not tail[0].isspace():
        return f"{head} {tail}"
    return head + tail


class PromptFitter:
    """Counts prompt tokens with the policy's tokenizer and cuts contexts in the middle to ``budget``.

    The count is of the rendered prompt: the chat template with the generation prompt when the
    tokenizer has one (what vLLM and TransformersBackend feed the model), else the raw text.
    """

    def __init__(self, tokenizer: Any, budget: int | None):
        self.tokenizer = tokenizer
        self.budget = budget
        self.chat = bool(getattr(tokenizer, "chat_template", None))

    def count(self, context: str, question: str) -> int:
        text = user_text(context, question)
        if self.chat:
            out = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=True,
                                                     add_generation_prompt=True, return_dict=True)
            return len(out["input_ids"])
        return len(self.tokenizer(text)["input_ids"])

    def fit(self, context: str, question: str) -> Fitted:
        n = self.count(context, question)
        if self.budget is None or n <= self.budget:
            return Fitted(context, n)
        ids = list(self.tokenizer(context, add_special_tokens=False)["input_ids"])
        keep = len(ids) - (n - self.budget)
        for _ in range(6):  # decode/encode round trips may not be exact: shrink until it fits
            if keep <= 0:
                break
            head, tail = middle_cut(ids, keep)
            cut = join_cut(self.tokenizer.decode(head, skip_special_tokens=True),
                           self.tokenizer.decode(tail, skip_special_tokens=True))
            m = self.count(cut, question)
            if m <= self.budget:
                return Fitted(cut, m, True, len(ids) - keep)
            keep -= (m - self.budget) + 1
        return Fitted(None, n, True, len(ids),
                      error=f"prompt of {n} tokens cannot fit {self.budget} tokens by cutting its context "
                            "(the question alone is too long)")


def load_fitter(tokenizer: str | None, budget: int | None) -> PromptFitter | None:
    """A fitter for a tokenizer name/path, or None when neither truncation nor counting is possible."""
    if tokenizer is None:
        if budget is not None:
            raise ValueError("truncating prompts to the policy's window needs its tokenizer: pass --tokenizer "
                             "(or --max-model-len 0 to send prompts unchecked)")
        return None
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(tokenizer)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot load the policy's tokenizer {tokenizer!r} ({e}); pass --tokenizer NAME_OR_PATH, "
                         "or --max-model-len 0 to send prompts unchecked") from None
    return PromptFitter(tok, budget)


# ---------------------------------------------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------------------------------------------

@dataclass
class SampleConfig:
    """Decoding of the N samples (the paper: 10 per prompt at temperature 1.0)."""

    n: int = option(10, "samples per prompt", metavar="N", short="n")
    temperature: float = option(1.0, "", metavar="T")
    top_p: float | None = option(None, "", metavar="P")
    max_tokens: int = option(1024, "new tokens", metavar="N")
    seed: int = option(0, "sample i uses seed + i", metavar="N")
    prompts_in_flight: int = option(64, "prompts prepared at the same time", metavar="N")

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")

    def request(self, context: str, question: str, i: int) -> ChatRequest:
        """Sample ``i``'s request; its seed gives it its own cache key."""
        return ChatRequest.of([{"role": "user", "content": user_text(context, question)}],
                              temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                              seed=self.seed + i, template_id=TEMPLATE_ID, template_version=TEMPLATE_VERSION)


def sampling_key(cfg: SampleConfig, model: str, budget: int | None) -> dict[str, Any]:
    """The sampling settings a record carries: with the client's keyed settings, what it must match to be
    reused on a rerun (`run_sample`)."""
    return {"model": model, "n": cfg.n, "temperature": cfg.temperature, "top_p": cfg.top_p,
            "max_tokens": cfg.max_tokens, "seed": cfg.seed, "max_prompt_tokens": budget}


@dataclass
class SampleStats:
    """Counts for the end-of-run table."""

    prompts: int = 0
    max_prompt_tokens: int | None = None   # the budget prompts were cut to (None: not checked)
    reused: int = 0
    sampled: int = 0
    responses: int = 0
    failed_samples: int = 0
    failed_prompts: int = 0
    truncated: int = 0
    too_long: int = 0
    cut_at_max_tokens: int = 0
    bad_lines: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = d["errors"][:5]
        return d


def make_record(prompt: Prompt, fit: Fitted, results: list[ChatResult], seeds: list[int],
                sampling: dict[str, Any]) -> dict[str, Any]:
    """The output line of one prompt (an error line when no sample succeeded)."""
    ok = [(s, r) for s, r in zip(seeds, results, strict=True) if r.ok]
    failed = [{"seed": s, "error": r.error or "no content"} for s, r in zip(seeds, results, strict=True) if not r.ok]
    if fit.context is None:
        failed = [{"seed": s, "error": fit.error} for s in seeds]
    if not ok:
        first = failed[0]["error"] if failed else "no samples"
        rec = {"id": prompt.id, "line": prompt.line, "error": f"all {len(seeds)} samples failed: {first}",
               "failed": failed, "sampling": sampling, "prompt_tokens": fit.tokens}
        if fit.context is None:
            rec["too_long"] = True
        return rec
    rec: dict[str, Any] = {
        "id": prompt.id, "context": prompt.context, "question": prompt.question,
        "responses": [r.content for _, r in ok], "seeds": [s for s, _ in ok],
        "finish_reasons": [r.finish_reason for _, r in ok], "sampling": sampling,
        "prompt_tokens": fit.tokens, "truncated": fit.truncated, "context_tokens_cut": fit.cut_tokens,
    }
    if failed:
        rec["failed"] = failed
    return rec


async def sample_prompts(client: Any, prompts: Iterable[Prompt], cfg: SampleConfig, fitter: PromptFitter | None,
                         sampling: dict[str, Any], on_done: Callable[[Prompt, dict[str, Any]], None],
                         total: int) -> None:
    """Sample every prompt (N requests each, all through ``client``), pulling prompts lazily with at most
    ``cfg.prompts_in_flight`` in memory; ``on_done(prompt, record)`` as each finishes.  A fatal client error
    (bad key, unknown model) stops the batch and is raised."""
    from lr_eval.judge import gather_or_cancel

    seeds = [cfg.seed + i for i in range(cfg.n)]

    async def one(_: int, p: Prompt) -> dict[str, Any]:
        if fitter is None:
            fit = Fitted(p.context, None)
        else:
            fit = await asyncio.to_thread(fitter.fit, p.context, p.question)
        if fit.context is None:
            results = [ChatResult(content=None, error=fit.error, error_kind="bad_request") for _ in seeds]
        else:
            reqs = [cfg.request(fit.context, p.question, i) for i in range(cfg.n)]
            results = await gather_or_cancel([client.chat(r) for r in reqs])
        return make_record(p, fit, results, seeds, sampling)

    with client.progress("sampling", total * cfg.n):
        await run_window(prompts, one, cfg.prompts_in_flight, lambda _, p, rec: on_done(p, rec))


def is_done(rec: dict[str, Any]) -> bool:
    """A record from an earlier run that needs no new request (its key already matched prompt and sampling)."""
    return "error" not in rec and not rec.get("failed")


# ---------------------------------------------------------------------------------------------------------
# the policy client
# ---------------------------------------------------------------------------------------------------------

def model_fingerprint(path: str | Path) -> str:
    """Short identity of a local model folder's weights (names, sizes, mtimes): part of the cache key,
    so samples of a retrained checkpoint at the same path are never taken from the cache."""
    p = Path(path)
    if not p.is_dir():
        return ""
    digest = hashlib.sha256()
    for f in sorted(p.iterdir()):
        if f.is_file() and (f.suffix in (".safetensors", ".bin", ".json", ".gguf", ".pt")):
            st = f.stat()
            digest.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()[:10]


def model_window(path: str | Path) -> int | None:
    """``max_position_embeddings`` (or the like) of a model's config, None when unknown."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(path))
    for name in ("max_position_embeddings", "max_sequence_length", "seq_length", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def endpoint_window(base_url: str | None, model: str, api_key: str | None, timeout: float = 10.0) -> int | None:
    """The served model's window as ``vllm serve`` reports it (``max_model_len`` in GET /models); None
    when the endpoint does not say (OpenAI, most other servers) or cannot be reached."""
    if not base_url:
        return None
    import urllib.request

    req = urllib.request.Request(base_url.rstrip("/") + "/models",
                                 headers={"Authorization": f"Bearer {api_key or 'EMPTY'}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.load(resp)
    except (OSError, ValueError):
        return None
    for entry in data.get("data", []) if isinstance(data, dict) else []:
        if isinstance(entry, dict) and entry.get("id") == model:
            value = entry.get("max_model_len")
            return value if isinstance(value, int) and value > 0 else None
    return None


@dataclass
class PolicyConfig:
    """Where the policy answers: an OpenAI-compatible endpoint or an in-process transformers model."""

    model: str = option(help="served model name, or a local path with --backend transformers", metavar="NAME")
    backend: str = option("openai", "openai: any OpenAI-compatible endpoint, e.g. `vllm serve` (default); "
                          "transformers: in-process, one request at a time (small runs)",
                          choices=("openai", "transformers"))
    base_url: str | None = option(None, "e.g. http://localhost:8000/v1", metavar="URL")
    api_key_env: str = option("LR_POLICY_API_KEY", "variable holding the endpoint's key (then OPENAI_API_KEY)",
                              metavar="VAR")
    tokenizer: str | None = option(None, "the policy's tokenizer, to count and cut prompts (default: the model, "
                                   "in-process)", metavar="NAME")
    max_model_len: int | None = option(None, "the policy's window (prompt + new tokens, as vLLM's flag); longer "
                                       "prompts lose the middle of their context. Default: in-process, the model's "
                                       "max_position_embeddings; endpoint, what `vllm serve` reports on /models "
                                       "(else not checked); 0: never check", metavar="TOKENS")
    concurrency: int = option(16, "requests in flight", metavar="N")
    timeout: float = option(600.0, "per request, in seconds", metavar="S")
    max_retries: int = option(6, "retries of a failed request", metavar="N")
    cache: str | None = option(None, "SQLite cache of the samples, or 'none' (default: beside the output, "
                               "samples.cache.sqlite)", metavar="PATH")

    def __post_init__(self) -> None:
        if self.backend not in ("openai", "transformers"):
            raise ValueError(f"policy backend must be openai or transformers, not {self.backend!r}")
        if not self.model:
            raise ValueError("no policy model: pass --model (the served name, or a local path with "
                             "--backend transformers)")


def build_policy(pc: PolicyConfig, cfg: SampleConfig, show_progress: bool = True,
                 backend: Any = None) -> tuple[Any, int | None, Any]:
    """(client, prompt budget, fitter) for a policy configuration (`backend`: one already built)."""
    from lr_eval.config import JudgeConfig, build_client

    # A JudgeConfig built directly, not through JudgeConfig.load: LR_JUDGE_* variables describe the
    # judge, never the policy.
    jc = JudgeConfig(backend=pc.backend, base_url=pc.base_url, model=pc.model, api_key_env=pc.api_key_env,
                     max_tokens=cfg.max_tokens, concurrency=pc.concurrency, timeout=pc.timeout,
                     max_retries=pc.max_retries, cache=pc.cache or "none")
    window = pc.max_model_len
    tokenizer = pc.tokenizer
    if window == 0:
        window = None
    elif window is None and pc.backend == "openai":
        window = endpoint_window(pc.base_url, pc.model, jc.api_key())
        if window is not None:
            tokenizer = tokenizer or pc.model  # vLLM serves under the HF id or path by default
    if pc.backend == "transformers" and backend is None:
        from lr_eval.backends import TransformersBackend

        fp = model_fingerprint(pc.model)
        name = f"{Path(pc.model).name}@{fp}" if fp else pc.model
        window = model_window(pc.model) if pc.max_model_len is None else window
        tokenizer = tokenizer or pc.model
        backend = TransformersBackend(pc.model, model=name, max_input_tokens=window)
        jc.concurrency = 1
    budget = None if window is None else window - cfg.max_tokens
    if budget is not None and budget <= 0:
        raise ValueError(f"--max-tokens {cfg.max_tokens} leaves no room for the prompt in a window of {window}")
    fitter = load_fitter(tokenizer, budget)
    if pc.backend == "transformers" and fitter is not None and not fitter.chat:
        raise ValueError(f"{tokenizer}: the in-process sampler needs a tokenizer with a chat template "
                         "(or serve the model and sample through --base-url)")
    client = build_client(jc, show_progress=show_progress, backend=backend)
    return client, budget, fitter


def default_cache(output: str | Path) -> Path:
    """The sample cache beside the output file (``samples.jsonl`` → ``samples.cache.sqlite``)."""
    return Path(output).with_suffix(".cache.sqlite")


def run_sample(prompts_path: str | Path, output: str | Path, pc: PolicyConfig, cfg: SampleConfig,
               show_progress: bool = True, backend: Any = None) -> tuple[JsonlRecords, SampleStats, Any]:
    """The whole step: validate, resume, sample, write (streaming: memory does not grow with the prompts).
    Returns (the output's records, read lazily; stats; client meter). `backend`: an already built policy
    backend (a benchmark's scripted one)."""
    from lr_eval.types import JudgeStop

    out = Path(output).expanduser()
    if pc.cache is None:
        pc = replace(pc, cache=str(default_cache(out)))
    cache = None if str(pc.cache).lower() == "none" else pc.cache
    check_paths({"output": out, "sample cache (--cache)": cache}, {"prompts": prompts_path})
    stats = SampleStats()
    for _, _p, err in iter_prompts(prompts_path):  # every bad line is known before any request
        if err is not None:
            stats.bad_lines += 1
            stats.errors.append(err["error"])
        else:
            stats.prompts += 1
    client, budget, fitter = build_policy(pc, cfg, show_progress, backend)
    stats.max_prompt_tokens = budget
    sampling = sampling_key(cfg, client.model, budget)
    # The resume key: the record's sampling settings and the client's keyed settings (lr_eval.judge.KEYED_SETTINGS,
    # the list its cache key is built from), so a reused record is one the same requests would give.
    options = {**sampling, "client": client.keyed_settings()}

    def key(p: Prompt) -> str:
        return content_key({"id": p.id, "context": p.context, "question": p.question}, options)

    store = ResumableJsonl(out, reusable=is_done)
    todo = 0
    for _, p, _err in iter_prompts(prompts_path):
        todo += p is not None and key(p) not in store

    def fresh() -> Iterator[Prompt]:
        for _, p, _err in iter_prompts(prompts_path):
            if p is not None and key(p) not in store:
                yield p

    def on_done(p: Prompt, rec: dict[str, Any]) -> None:
        store.append({**rec, KEY_FIELD: key(p)})
        stats.sampled += 1

    stop: Exception | None = None
    try:
        client.run_coroutine(lambda: sample_prompts(client, fresh(), cfg, fitter, sampling, on_done, todo))
    except JudgeStop as e:
        stop = e
    stats.reused = stats.prompts - todo

    def order() -> Iterator[str | dict[str, Any]]:
        for n, p, err in iter_prompts(prompts_path):
            if err is not None:
                yield err
            elif store.get(key(p)) is not None:
                yield key(p)
            else:
                yield {"id": p.id, "line": n, "error": f"not sampled: {stop}"}

    store.finish(order())
    for _, rec in read_jsonl(out, allow_empty=True):
        if isinstance(rec, InputError) or KEY_FIELD not in rec and "not sampled" not in str(rec.get("error")):
            continue  # a bad input line, counted above
        stats.responses += len(rec.get("responses", []))
        stats.failed_samples += len(rec.get("failed", []))
        stats.truncated += bool(rec.get("truncated")) and "error" not in rec
        stats.too_long += bool(rec.get("too_long"))
        stats.cut_at_max_tokens += sum(f == "length" for f in rec.get("finish_reasons", []))
        if "error" in rec:
            stats.failed_prompts += 1
            stats.errors.append(f"{rec['id']}: {rec['error']}")
    if stop is not None:  # one line from lr-train's error handler; every sampled prompt is written
        raise stop
    return JsonlRecords(out), stats, client.meter
