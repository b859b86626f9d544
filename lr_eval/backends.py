"""Judge backends: where a ChatRequest is actually answered.

Every backend answers one request or raises TransientError (retry),
PermanentError (this request cannot be answered) or JudgeFatalError (stop
everything). Retries, caching, budgets and concurrency live in JudgeClient,
so they behave the same whatever the backend.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .formats import AnswerFormat, FormatTooLarge, from_json, verdict_logprobs_from_steps
from .progress import console
from .retry import classify
from .types import ChatRequest, ChatResult, PermanentError, TransientError, Usage

if TYPE_CHECKING:
    from .accounting import UsageMeter

#: The request field each server form puts the grammar in, and what to try when a server ignores it.
SERVER_FIELDS = {"structured_outputs": "structured_outputs", "guided_regex": "guided_regex", "regex": "regex",
                 "json_schema": "response_format"}
_INSTEAD = {
    "structured_outputs": "vLLM before 0.10.2 takes --structured-form guided_regex, SGLang regex, other servers "
                          "perhaps json_schema",
    "guided_regex": "vLLM 0.10.2 and later take --structured-form structured_outputs (guided_* was removed in "
                    "0.12)",
    "regex": "vLLM takes --structured-form structured_outputs",
    "json_schema": "vLLM takes --structured-form structured_outputs",
}


def structured_body(request: ChatRequest) -> dict[str, Any]:
    """The body fields that make a server enforce the request's answer format (none when not structured).

    `structured_outputs` (vLLM >= 0.10: `{"structured_outputs": {"regex": ...}}`), `guided_regex` (older vLLM),
    `regex` (SGLang), `json_schema` (the OpenAI `response_format`; the answer comes back as JSON and is turned
    into text by `lr_eval.formats.from_json`).
    """
    fmt, form = request.answer_format, request.structured
    if fmt is None or not form:
        return {}
    assert request.max_tokens is not None  # JudgeClient.complete() set it
    if form == "json_schema":
        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": fmt.name.replace(".", "_").replace("[", "_").replace("]", "")[:64],
            "schema": fmt.json_schema(request.max_tokens), "strict": True}}}
    rx = fmt.regex(request.max_tokens)
    forms: dict[str, dict[str, Any]] = {"structured_outputs": {"structured_outputs": {"regex": rx}},
                                        "guided_regex": {"guided_regex": rx}, "regex": {"regex": rx}}
    return forms[form]


@functools.lru_cache(maxsize=256)
def _format_re(fmt: AnswerFormat, max_tokens: int) -> re.Pattern[str] | None:
    try:
        return re.compile(fmt.regex(max_tokens))
    except (FormatTooLarge, re.error):  # a format too large is a failed call before sending; not checked
        return None


def outside_format(request: ChatRequest, text: str | None) -> bool:
    """True when the answer to a server-constrained request does not match the format it was constrained to
    (the server ignored the field): a constraint that did not take effect is said, not assumed."""
    fmt = request.answer_format
    if fmt is None or request.structured not in SERVER_FIELDS or text is None or request.max_tokens is None:
        return False
    pattern = _format_re(fmt, request.max_tokens)
    return pattern is not None and pattern.fullmatch(text) is None


class Backend(Protocol):
    model: str

    async def send(self, request: ChatRequest) -> ChatResult: ...

    async def aclose(self) -> None: ...


class OpenAIBackend:
    """Any OpenAI-compatible chat endpoint, through the official `openai` client.

    The client's own retries are switched off: JudgeClient retries with its own
    policy and counts every attempt. The HTTP transport is aiohttp (the SDK's
    `DefaultAioHttpClient`, its documented choice for high concurrency): at 64
    concurrent requests against the scripted server it measured 1.2-1.4 ms of
    CPU per request, against 1.6-1.75 ms with the default HTTPX2 pool.
    """

    def __init__(self, model: str, base_url: str | None, api_key: str | None, timeout: float = 120.0,
                 api_key_env: str = "LR_JUDGE_API_KEY"):
        self.model = model
        self.base_url = base_url
        self._api_key = api_key or "EMPTY"  # local servers accept any key; never logged
        self.api_key_env = api_key_env      # named in error messages, never the key
        self.timeout = timeout
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.meter: UsageMeter | None = None  # set by build_client: answers outside their format are counted
        self._ignored: set[str] = set()       # request fields this server was seen to ignore (said once each)

    def _get_client(self) -> Any:
        # AsyncOpenAI clients (and their aiohttp sessions) are bound to the event loop that first used them.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            from openai import AsyncOpenAI, DefaultAioHttpClient

            self._client = AsyncOpenAI(base_url=self.base_url, api_key=self._api_key, max_retries=0,
                                       timeout=self.timeout, http_client=DefaultAioHttpClient(timeout=self.timeout))
            self._loop = loop
        return self._client

    async def send(self, request: ChatRequest) -> ChatResult:
        """POST exactly this request (the client has filled in every default) and read the answer."""
        body = {"model": self.model, "messages": list(request.messages), **request.decoding(),
                **structured_body(request)}
        try:
            # The client's low-level post with a plain dict in and out: same auth, errors and
            # status handling as chat.completions.create, without its per-call TypedDict transform
            # and pydantic model building (together ~1.5 ms of CPU per request).
            resp = await self._get_client().post("/chat/completions", body=body, cast_to=dict)
        except Exception as e:  # noqa: BLE001 - every failure is classified, none is swallowed
            kind = classify(e, self.base_url, self.model, "judge", self.api_key_env, self.timeout)
            if kind is e:
                raise
            raise kind from None
        res = _result_from_openai(resp, self.base_url)
        if request.structured == "json_schema" and res.content is not None:
            res.content = from_json(res.content)
        if outside_format(request, res.content):
            self._ignored_constraint(str(request.structured))
        if request.score_from == "logprobs" and request.answer_format is not None and res.top_logprobs:
            chosen = [t["token"] for t in resp["choices"][0]["logprobs"]["content"]]
            res.verdict_logprobs = verdict_logprobs_from_steps(chosen, res.top_logprobs, request.answer_format.ratings)
        return res

    def _ignored_constraint(self, form: str) -> None:
        """Count an answer outside its format and say once per field that the server ignored it."""
        if self.meter is not None:
            self.meter.off_format += 1
        if form not in self._ignored:
            self._ignored.add(form)
            console.print(f"warning: the judge server at {self.base_url or 'api.openai.com'} ignored the "
                          f"`{SERVER_FIELDS[form]}` request field (--structured-form {form}): an answer came back "
                          f"outside its format; such answers are read as free text and counted "
                          f"(answers_outside_format). {_INSTEAD[form]}.", style="yellow", markup=False,
                          highlight=False)

    async def aclose(self) -> None:
        if self._client is not None:
            try:
                await self._client.close()
            except RuntimeError:  # loop already closed
                pass
        self._client = None


def _result_from_openai(resp: Any, endpoint: str | None) -> ChatResult:
    """A ChatResult from a chat.completion JSON body; anything malformed is worth a retry."""
    try:
        choice = resp["choices"][0]
        content = choice["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("message content is not a string")
        top: list[dict[str, float]] | None = None
        lp = choice.get("logprobs") or {}
        if lp.get("content"):
            top = []
            for tok in lp["content"]:
                alts = {a["token"]: float(a["logprob"]) for a in tok.get("top_logprobs") or []}
                alts.setdefault(tok["token"], float(tok["logprob"]))
                top.append(alts)
        usage = resp.get("usage") or {}
        return ChatResult(content=content,
                          usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
                          finish_reason=choice.get("finish_reason"), top_logprobs=top)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
        raise TransientError(f"malformed response body from {endpoint or 'api.openai.com'}: "
                             f"{type(e).__name__}: {e}") from None


def _required_max_tokens(request: ChatRequest) -> int:
    """In-process backends need a bound; JudgeClient always sets one (its default_max_tokens)."""
    if request.max_tokens is None:
        raise PermanentError("request without max_tokens: send it through JudgeClient, which fills it in")
    return request.max_tokens


class TransformersBackend:
    """A local Hugging Face model answering in-process (CPU or GPU), one request at a time.

    For users without a server. Greedy at temperature 0, sampling otherwise;
    token counts come from the model's own tokenizer.
    """

    def __init__(self, model_path: str | Path, model: str | None = None, device: str | None = None,
                 dtype: str = "auto", max_input_tokens: int | None = None):
        self.path = str(model_path)
        self.model = model or Path(self.path).name
        self.device = device
        self.dtype = dtype
        self.max_input_tokens = max_input_tokens
        self._lm: Any = None
        self._tok: Any = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lr-eval-local")

    def _load(self) -> None:
        if self._lm is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32,
                 "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[self.dtype]
        self._tok = AutoTokenizer.from_pretrained(self.path)
        self._lm = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype).to(device).eval()
        if self.max_input_tokens is None:
            self.max_input_tokens = int(getattr(self._lm.config, "max_position_embeddings", 4096))

    def _generate(self, request: ChatRequest) -> ChatResult:
        import torch

        with self._lock:
            self._load()
            ids = self._tok.apply_chat_template(list(request.messages), add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)["input_ids"]
            max_new = _required_max_tokens(request)
            if ids.shape[1] + max_new > self.max_input_tokens:
                raise PermanentError(
                    f"context too long: {ids.shape[1]} prompt tokens + {max_new} new tokens "
                    f"> {self.max_input_tokens} for {self.model}")
            ids = ids.to(self._lm.device)
            sample = request.temperature > 0
            gen_kwargs: dict[str, Any] = dict(max_new_tokens=max_new, do_sample=sample,
                                              pad_token_id=self._tok.pad_token_id or self._tok.eos_token_id)
            if sample:
                gen_kwargs.update(temperature=request.temperature, top_p=request.top_p or 1.0)
                if request.seed is not None:
                    torch.manual_seed(request.seed)
            else:
                gen_kwargs.update(temperature=None, top_p=None, top_k=None)
            want_lp = bool(request.logprobs)
            fmt = request.answer_format
            if request.structured and fmt is not None:  # enforce the answer format (lr_eval.constrained)
                from transformers import LogitsProcessorList

                from .constrained import logits_processor, matcher

                grammar = matcher(self._tok, fmt.lark(max_new))
                gen_kwargs.update(logits_processor=LogitsProcessorList([logits_processor(grammar,
                                                                                         self._tok.eos_token_id)]),
                                  eos_token_id=self._tok.eos_token_id)
            with torch.no_grad():
                out = self._lm.generate(ids, attention_mask=torch.ones_like(ids), return_dict_in_generate=True,
                                        output_scores=want_lp, **gen_kwargs)
            new = out.sequences[0, ids.shape[1]:]
            text = self._tok.decode(new, skip_special_tokens=True)
            finish = "length" if len(new) >= max_new else "stop"
            if request.stop:
                cut = [text.find(s) for s in request.stop if s in text]
                if cut:
                    text, finish = text[:min(cut)], "stop"
            top = None
            if want_lp:
                k = request.top_logprobs or 1
                top = []
                for step in out.scores:
                    lps = torch.log_softmax(step[0].float(), dim=-1)
                    vals, idx = lps.topk(k)
                    top.append({self._tok.decode([int(i)]): float(v) for v, i in zip(vals, idx, strict=True)})
            verdict = None
            if request.score_from == "logprobs" and fmt is not None and fmt.ratings:
                from .constrained import rating_logprobs

                verdict = rating_logprobs(self._lm, self._tok, ids, [int(t) for t in new
                                                                     if int(t) != self._tok.eos_token_id],
                                          fmt.ratings)
            return ChatResult(content=text, usage=Usage(int(ids.shape[1]), len(new)), finish_reason=finish,
                              top_logprobs=top, verdict_logprobs=verdict)

    async def send(self, request: ChatRequest) -> ChatResult:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._generate, request)

    async def aclose(self) -> None:
        return None


class VLLMBackend:
    """vLLM's offline engine in-process (GPU), when the `vllm` extra is installed.

    Requests still go one by one through JudgeClient; vLLM batches concurrent
    calls internally only through its server, so for throughput prefer
    `vllm serve` + OpenAIBackend. This backend exists for single-process jobs.
    """

    def __init__(self, model_path: str, model: str | None = None, **engine_kwargs: Any):
        self.path = model_path
        self.model = model or Path(model_path).name
        self._engine_kwargs = engine_kwargs
        self._llm: Any = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lr-eval-vllm")

    def _generate(self, request: ChatRequest) -> ChatResult:
        from vllm import LLM, SamplingParams

        with self._lock:
            if self._llm is None:
                self._llm = LLM(model=self.path, **self._engine_kwargs)
            max_tokens = _required_max_tokens(request)
            params = SamplingParams(temperature=request.temperature, top_p=request.top_p or 1.0,
                                    max_tokens=max_tokens, stop=list(request.stop or []) or None,
                                    seed=request.seed,
                                    logprobs=request.top_logprobs if request.logprobs else None,
                                    **_vllm_structured(request, max_tokens))
            out = self._llm.chat([list(request.messages)], params, use_tqdm=False)[0]
            comp = out.outputs[0]
            top = verdict = None
            if request.logprobs and comp.logprobs:
                top = [{lp.decoded_token: float(lp.logprob) for lp in step.values()} for step in comp.logprobs]
                if request.score_from == "logprobs" and request.answer_format is not None:
                    chosen = [step[t].decoded_token for step, t in zip(comp.logprobs, comp.token_ids, strict=False)]
                    verdict = verdict_logprobs_from_steps(chosen, top, request.answer_format.ratings)
            return ChatResult(content=comp.text, usage=Usage(len(out.prompt_token_ids), len(comp.token_ids)),
                              finish_reason=comp.finish_reason, top_logprobs=top, verdict_logprobs=verdict)

    async def send(self, request: ChatRequest) -> ChatResult:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._generate, request)

    async def aclose(self) -> None:
        return None


def _vllm_structured(request: ChatRequest, max_tokens: int) -> dict[str, Any]:
    """vLLM's structured-output parameter for the request's answer format (its regex form), when structured."""
    if not request.structured or request.answer_format is None:
        return {}
    rx = request.answer_format.regex(max_tokens)
    try:  # vLLM >= 0.10.2
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(regex=rx)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(regex=rx)}
