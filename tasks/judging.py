"""Judge infrastructure shared by the judged lm-eval tasks (judged LongBench, LongBench-Chat, AlpacaEval 2,
LongReward as a metric).

How a judged task runs inside lm-eval 0.4.13:

1. Build time: the task's ``custom_dataset`` loader calls :func:`require_judge`, so a run with
   no judge configured stops with a clear message *before* the model generates anything.
2. Generation: lm-eval as usual.
3. ``filter_list`` runs a :class:`JudgeFilter` subclass. lm-eval hands a filter every response
   and doc of the task at once, so all judge calls of the task go to the judge client in one
   concurrent batch (cached, retried, budgeted; one progress bar). The filter returns one
   *verdict* per sample; lm-eval logs it as the sample's ``filtered_resps`` (response, value,
   status, cause, reason, each judge call's answer, parsed value and usage).
4. :func:`process_results` turns a verdict (:class:`lr_eval.records.Verdict`) into metric values:
   ``score`` (0-100; a tampered sample at the scale's minimum; absent for an unscored one, so the mean
   leaves it out), ``score_pessimistic`` (unscored counted as the minimum: the pessimistic bound),
   ``judge_unscored`` and ``judge_tampered`` (0/1, summed) and ``judge_cost_usd`` (summed; absent when the
   judge's price is unknown). The verdict travels as JSON text because lm-eval's samples writer applies
   ``str()`` to every filtered response. Nothing unscored ever becomes a default score.
5. The filter also writes the judge's identity, template versions, parse counts and usage/cost
   into the task's config metadata, which lm-eval dumps into the results JSON as
   ``configs.<task>.metadata.judge``.

The judge is configured exactly like every other judging command: ``LR_JUDGE_*`` variables, a
TOML file (``LR_JUDGE_CONFIG``), or lm-eval ``--metadata`` keys ``judge_<setting>`` (e.g.
``{"judge_model": "gpt-4o", "judge_base_url": "...", "judge_config": "judge.toml"}``), which win.
``--predict_only`` runs need no judge; ``lr-eval rejudge`` scores their samples later, through the
same path: it finds a task's :class:`BatchJudgeFilter` in the task's ``filter_list`` and lets lm-eval
run the task on the saved docs and responses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import tempfile
import urllib.request
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from lm_eval.api.filter import Filter

from lr_eval.config import JudgeConfig, build_client, cache_dir
from lr_eval.errors import UserError
from lr_eval.flags import truthy
from lr_eval.judge import JudgeClient, gather_or_cancel
from lr_eval.parsing import Parsed, ParseStats, ask_and_parse
from lr_eval.records import CAUSES, SCORED, TAMPERED, UNSCORED, JudgeCall, JudgeReport, Verdict, verdict_of
from lr_eval.types import ChatRequest, ChatResult

from .lm_eval_adapter import (calling_task, is_predict_only, note_in_results, predict_only_requested,
                              running_lm_eval_cli, store_report)

log = logging.getLogger(__name__)

#: The metadata key under which a task records the prompt budget (tokens) it truncated to: ``max_length`` when
#: given, else the default from the model's window (``configs.<task>.metadata.effective_max_length``).
EFFECTIVE_MAX_LENGTH = "effective_max_length"

#: --metadata keys that configure the judge: ``judge_<JudgeConfig field>`` plus these.
JUDGE_PREFIX = "judge_"
JUDGE_FILE_KEY = "judge_config"        # a TOML file, like LR_JUDGE_CONFIG
JUDGE_REASKS_KEY = "judge_reasks"      # re-asks of an unparseable answer (default 1)
DEFAULT_REASKS = 1

#: Default cap on the model's input, in tokens (the paper's 64k), middle-truncated at load time.
DEFAULT_MAX_INPUT_TOKENS = 64_000


class JudgeNotConfigured(RuntimeError):
    """A judged task was asked for but no judge is configured."""


# --------------------------------------------------------------------------- configuration


def judge_overrides(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The ``judge_<setting>`` keys of lm-eval metadata, as JudgeConfig overrides."""
    names = {f.name for f in fields(JudgeConfig)}
    out: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        if key.startswith(JUDGE_PREFIX) and key[len(JUDGE_PREFIX):] in names and key != JUDGE_FILE_KEY:
            out[key[len(JUDGE_PREFIX):]] = value
    return out


def load_judge_config(metadata: dict[str, Any] | None = None) -> JudgeConfig:
    """Defaults < TOML file < LR_JUDGE_* < ``--metadata judge_*`` keys."""
    metadata = metadata or {}
    return JudgeConfig.load(metadata.get(JUDGE_FILE_KEY), overrides=judge_overrides(metadata))


def no_judge_message(task: str) -> str:
    return (
        f"{task} is judged by an LLM, and no judge is configured. Configure one with environment "
        "variables (LR_JUDGE_MODEL=NAME, plus LR_JUDGE_BASE_URL=URL for any OpenAI-compatible server; "
        "key in LR_JUDGE_API_KEY or OPENAI_API_KEY), a TOML file (LR_JUDGE_CONFIG=judge.toml), or lm-eval "
        "--metadata '{\"judge_model\": \"NAME\", \"judge_base_url\": \"URL\"}'. To generate without judging, "
        "run with --predict_only and score the samples later with `lr-eval rejudge SAMPLES.jsonl`."
    )


def require_judge(task: str, metadata: dict[str, Any] | None) -> JudgeConfig | None:
    """Called by a judged task's loader at build time: fail before generation when no judge is set."""
    cfg = load_judge_config(metadata)
    if cfg.configured:
        log.info("%s: judge %s", task, cfg.describe())
        return cfg
    if predict_only_requested(metadata):
        log.warning("%s: no judge configured; --predict_only generates only (score later with lr-eval rejudge)",
                    task)
        return None
    raise JudgeNotConfigured(no_judge_message(task))


# -------------------------------------------------------------------------------- data files


def download_cached(url: str, relpath: str, timeout: float = 120.0) -> Path:
    """A file from `url`, downloaded once into the project cache (atomic rename, so never half-written)."""
    target = cache_dir() / "data" / relpath
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
        os.replace(tmp, target)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise RuntimeError(f"could not download {url} ({e}); download it yourself and pass its local path "
                           "(see the task's documentation for the override)") from e
    return target


def download_checked(url: str, relpath: str, sha256: str, override_hint: str | None = None) -> Path:
    """:func:`download_cached`, then its SHA-256 checked: a pinned official file, byte for byte.

    ``override_hint`` names the local override, for the error when the download fails or the bytes differ.
    """
    also = f", or set {override_hint}" if override_hint else ""
    try:
        path = download_cached(url, relpath)
    except RuntimeError as error:
        if not override_hint:
            raise
        raise RuntimeError(f"{error}; or set {override_hint}") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"{path} (from {url}) has SHA-256 {digest}, expected {sha256}; delete it to download "
                           f"again{also}")
    return path


def resolve_file(metadata: dict[str, Any] | None, *, file_key: str, dir_key: str | None, env: str,
                 dir_env: str | None, filename: str, url: str, cache_name: str, sha256: str | None = None) -> Path:
    """A data file: --metadata path > --metadata folder > env path > env folder > cached download (checked
    against `sha256` when given)."""
    metadata = metadata or {}
    candidates: list[tuple[str, str | None]] = [(file_key, metadata.get(file_key))]
    if dir_key:
        candidates.append((dir_key, metadata.get(dir_key) and str(Path(metadata[dir_key]) / filename)))
    candidates.append((env, os.environ.get(env)))
    if dir_env:
        candidates.append((dir_env, os.environ.get(dir_env) and str(Path(os.environ[dir_env]) / filename)))
    for source, value in candidates:
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"{source}: {path} does not exist")
            return path
    return download_checked(url, cache_name, sha256) if sha256 else download_cached(url, cache_name)


# ------------------------------------------------------------------------------ truncation


def prompt_tokenizer(metadata: dict[str, Any] | None, task: str) -> Any:
    """The model's tokenizer (model_args ``pretrained`` / metadata ``tokenizer``), as LongBench's loader finds it."""
    from .longbench_data import _tokenizer, tokenizer_name

    metadata = metadata or {}
    name = tokenizer_name(metadata)
    if name is None:
        raise ValueError(f"{task} middle-truncates prompts with the model's tokenizer: pass --model_args "
                         "pretrained=... or --metadata '{\"tokenizer\": \"...\"}'")
    return _tokenizer(name, truthy(metadata.get("trust_remote_code")))


def prompt_budget(metadata: dict[str, Any] | None, max_new_tokens: int) -> int:
    """Prompt length cap in tokens: metadata ``max_length`` if given, else min(64k, model window - new tokens).

    ``max_length`` means the prompt budget, as in the LongBench tasks (the role of model2maxlen.json).
    """
    from .longbench_data import default_max_length, tokenizer_name

    metadata = metadata or {}
    if metadata.get("max_length") not in (None, ""):
        limit = int(metadata["max_length"])
    else:
        limit = DEFAULT_MAX_INPUT_TOKENS
        name = tokenizer_name(metadata)
        if name is not None:
            trust = truthy(metadata.get("trust_remote_code"))
            limit = min(limit, default_max_length(name, max_new_tokens, trust))
    if limit <= 1:
        raise ValueError(f"prompt budget of {limit} tokens leaves no room for the prompt")
    note_in_results(EFFECTIVE_MAX_LENGTH, limit)
    return limit


def middle_truncate(text: str, tokenizer: Any, max_tokens: int) -> tuple[str, int]:
    """LongAlign (LongBench-Chat) middle truncation: keep the first and last int(max_tokens/2) tokens.

    Tokens are counted without special tokens, as LongAlign's eval.py does (LongBench's pred.py
    counts them: see longbench_data.middle_truncate). Returns the text and its original token count.
    """
    ids = tokenizer(text, truncation=False, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text, len(ids)
    half = int(max_tokens / 2)
    return (tokenizer.decode(ids[:half], skip_special_tokens=True)
            + tokenizer.decode(ids[-half:], skip_special_tokens=True)), len(ids)


# ------------------------------------------------------------------------------ judge specs


class JudgeSpec(ABC):
    """How one task family asks the judge about a sample and turns the answers into a score."""

    template_id: str = ""
    template_version: str = ""
    #: The scale of one rating, for reports (e.g. (1, 3)).
    scale: tuple[float, float] = (0.0, 10.0)
    #: The scale of a sample's value (what `combine` returns; a tampered sample scores its minimum).
    sample_scale: tuple[float, float] = (0.0, 100.0)

    def __init__(self, task: str, metadata: dict[str, Any] | None = None, max_tokens: int = 1024):
        self.task = task
        self.metadata = dict(metadata or {})
        self.max_tokens = max_tokens

    @abstractmethod
    def requests(self, doc: dict[str, Any], response: str) -> list[ChatRequest]:
        """The judge calls for one sample (e.g. one per reference answer)."""

    @abstractmethod
    def parse(self, text: str | None) -> Parsed:
        """One judge answer -> rating on `scale`, or unscored with a reason."""

    @abstractmethod
    def combine(self, doc: dict[str, Any], ratings: list[Parsed]) -> Parsed:
        """The sample's score on `sample_scale` from its calls' ratings (unscored when it cannot be known;
        tampered when a call's verdict could be the evaluated text's)."""

    def call_info(self, doc: dict[str, Any], index: int) -> dict[str, Any]:
        """Extra fields logged with the index-th call's judgement (e.g. which reference)."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {"template_id": self.template_id, "template_version": self.template_version,
                "rating_scale": list(self.scale)}


# ------------------------------------------------------------------------------ judging


def _cost(results: Sequence[ChatResult], client: JudgeClient) -> float | None:
    price = client.meter.price
    if price is None:
        return None
    return sum((r.usage.input_tokens * price[0] + r.usage.output_tokens * price[1]) / 1e6
               for r in results if r.ok and not r.cached)


def _usage(results: Sequence[ChatResult]) -> dict[str, Any]:
    return {"calls": len(results), "input_tokens": sum(r.usage.input_tokens for r in results),
            "output_tokens": sum(r.usage.output_tokens for r in results), "cached": all(r.cached for r in results)}


def judge_call(spec: JudgeSpec, parsed: Parsed, results: Sequence[ChatResult], client: JudgeClient,
               info: dict[str, Any]) -> JudgeCall:
    """One call's record: its template, the judge's answer, what was read from it and what it cost."""
    details: dict[str, Any] = {**info, "clamped": parsed.clamped, "constrained": parsed.constrained,
                               "error": results[-1].error}
    if parsed.from_logprobs:
        details["rating_argmax"] = parsed.argmax
    if len(results) > 1:
        details["reask_answer"] = results[-1].content
    return JudgeCall(status=parsed.status, value=parsed.value, cause=parsed.cause, reason=parsed.reason,
                     template_id=spec.template_id, template_version=spec.template_version,
                     answer=results[0].content if results[0].ok else None, usage=_usage(results),
                     cost_usd=_cost(results, client), details=details)


def count_verdicts(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """The JudgeReport's sample counts: judged, scored, tampered, unscored (judge-caused), reasons, causes."""
    reasons = Counter(v.reason or "unknown" for v in verdicts if v.status == UNSCORED)
    causes = Counter(v.cause for v in verdicts if v.cause is not None)
    return {"judged": len(verdicts), "scored": sum(v.status == SCORED for v in verdicts),
            "tampered": sum(v.status == TAMPERED for v in verdicts), "unscored": sum(reasons.values()),
            "unscored_reasons": dict(reasons), "tampered_reasons": dict(Counter(
                v.reason or "unknown" for v in verdicts if v.status == TAMPERED)),
            "causes": {c: causes.get(c, 0) for c in CAUSES}}


def judge_samples(spec: JudgeSpec, client: JudgeClient, docs: Sequence[dict[str, Any]], responses: Sequence[str],
                  reasks: int = DEFAULT_REASKS, desc: str | None = None,
                  judge: str | None = None) -> tuple[list[Verdict], JudgeReport]:
    """Judge every sample in one concurrent batch; returns one :class:`~lr_eval.records.Verdict` per sample
    (its value on the spec's `sample_scale`, its judge calls) and the judge report (`judge` describes the judge
    configuration)."""
    plan = [(i, j, req) for i, (doc, resp) in enumerate(zip(docs, responses, strict=True))
            for j, req in enumerate(spec.requests(doc, resp))]
    call_stats = ParseStats()

    async def run_all() -> list[tuple[Parsed, list[ChatResult]]]:
        with client.progress(desc or f"judging {spec.task}", len(plan)):
            return await gather_or_cancel([ask_and_parse(client, req, spec.parse, reasks, call_stats)
                                           for _, _, req in plan])

    outcomes = client.run_coroutine(run_all)
    per_sample: list[list[tuple[int, Parsed, list[ChatResult]]]] = [[] for _ in docs]
    for (i, j, _), (parsed, results) in zip(plan, outcomes, strict=True):
        per_sample[i].append((j, parsed, results))

    verdicts: list[Verdict] = []
    lo, hi = spec.sample_scale
    for doc, resp, calls in zip(docs, responses, per_sample, strict=True):
        final = spec.combine(doc, [p for _, p, _ in calls])
        cost = _cost([r for _, _, rs in calls for r in rs], client)
        value = lo if final.tampered else final.value
        verdicts.append(Verdict(
            status=final.status, scale=(lo, hi), value=value, cause=final.cause, reason=final.reason,
            response=resp, calls=[judge_call(spec, p, rs, client, spec.call_info(doc, j)) for j, p, rs in calls],
            judge={"model": client.model, "template": f"{spec.template_id}@{spec.template_version}"},
            cost_usd=cost, details={"clamped": final.clamped}))
    details = spec.describe()
    costs = [v.cost_usd for v in verdicts]
    report = JudgeReport(
        model=client.model, judge=judge, template_id=details.pop("template_id", None),
        template_version=details.pop("template_version", None), samples=count_verdicts(verdicts),
        usage=client.summary(),
        cost_usd=None if client.meter.price is None else round(sum(c or 0.0 for c in costs), 6),
        details={**details, "sample_scale": [lo, hi], "reasks": reasks, "calls": call_stats.to_dict()})
    return verdicts, report


def build_judge(task: str, metadata: dict[str, Any] | None) -> tuple[JudgeClient, JudgeConfig]:
    """The judge client for a task, or JudgeNotConfigured."""
    cfg = load_judge_config(metadata)
    if not cfg.configured:
        raise JudgeNotConfigured(no_judge_message(task))
    return build_client(cfg), cfg


def reasks_from(metadata: dict[str, Any] | None, default: int = DEFAULT_REASKS) -> int:
    value = (metadata or {}).get(JUDGE_REASKS_KEY)
    return default if value is None else int(value)


# ------------------------------------------------------------------------- judge filters


def _first(resp: Any) -> str:
    """take_first: lm-eval keeps a list of responses per request (repeats)."""
    if isinstance(resp, (list, tuple)):
        resp = resp[0] if resp else ""
    return "" if resp is None else str(resp)


class BatchJudgeFilter(Filter):
    """Skeleton of a filter that judges every response of a task in one batch.

    Subclasses implement :meth:`judge` (verdicts and a report); the filter skips judging in
    --predict_only runs, logs a summary, stores the report in the task's metadata and returns
    the verdicts as JSON text (lm-eval's samples writer applies ``str()`` to every filtered response).
    """

    #: The task name when no lm-eval task is found on the call stack.
    default_task: str = ""
    #: What a sample is called in the summary line ("samples", "answers").
    unit: str = "samples"
    #: ``json.dumps``'s ``default`` for the verdicts (e.g. str; None: fail on values JSON does not know).
    json_default: Callable[[Any], Any] | None = None
    #: Fields every doc needs; `lr-eval rejudge` checks saved docs against them before judging anything.
    doc_fields: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        self.options = kwargs
        super().__init__()

    def fallback_name(self) -> str:
        return self.default_task

    @abstractmethod
    def judge(self, name: str, metadata: dict[str, Any], docs: Sequence[dict[str, Any]],
              responses: list[str]) -> tuple[list[Verdict], JudgeReport]:
        """One verdict per sample and the report for the results file."""

    def log_summary(self, name: str, n: int, report: JudgeReport) -> None:
        log.warning("%s: judged %d %s with %s: %d scored, %d tampered (scored as the minimum), %d unscored, "
                    "cost %s USD", name, n, self.unit, report.model, report.samples["scored"],
                    report.tampered_items, report.unscored_items, report.total_cost())

    def apply(self, resps: Sequence[Any], docs: Sequence[dict[str, Any]]) -> list[Any]:
        responses = [_first(r) for r in resps]
        task = calling_task()
        if task is not None and is_predict_only(task):
            return responses  # --predict_only: generation only, judged later (e.g. lr-eval rejudge)
        metadata = dict(getattr(task.config, "metadata", None) or {}) if task is not None else {}
        name = str(task.config.task) if task is not None else self.fallback_name()
        try:
            verdicts, report = self.judge(name, metadata, docs, responses)
        except UserError as e:
            if not running_lm_eval_cli():
                raise
            # Under lm-eval's command line: one line and the exit code, not lm-eval's traceback. Every judge
            # answer received is already in the cache, so a rerun (or lr-eval rejudge) continues from there.
            print(f"{name}: error: {e}", file=sys.stderr)
            raise SystemExit(e.exit_code) from None
        self.log_summary(name, len(docs), report)
        if task is not None:
            store_report(task, report.to_dict())
        # JSON text, not a dict: lm-eval's samples writer turns every filtered response into str().
        return [json.dumps(v.to_dict(), ensure_ascii=False, default=self.json_default) for v in verdicts]


class JudgeFilter(BatchJudgeFilter):
    """Judges every response of a task in one concurrent batch; subclasses name their JudgeSpec."""

    spec_class: type[JudgeSpec]
    #: Re-asks of an unparseable answer when --metadata has no ``judge_reasks``.
    default_reasks: int = DEFAULT_REASKS

    def fallback_name(self) -> str:
        return self.options.get("task", self.spec_class.__name__)

    def make_spec(self, name: str, metadata: dict[str, Any], cfg: JudgeConfig) -> JudgeSpec:
        return self.spec_class(name, metadata, cfg.max_tokens)

    def items(self, docs: Sequence[dict[str, Any]], responses: list[str]) -> list[dict[str, Any]]:
        """What the spec judges, one per response: the docs (MT-Bench: each turn's conversation)."""
        return list(docs)

    def judge(self, name: str, metadata: dict[str, Any], docs: Sequence[dict[str, Any]],
              responses: list[str]) -> tuple[list[Verdict], JudgeReport]:
        client, cfg = build_judge(name, metadata)
        return judge_samples(self.make_spec(name, metadata, cfg), client, self.items(docs, responses), responses,
                             reasks_from(metadata, self.default_reasks), judge=cfg.describe())


def register_judge_filter(name: str, cls: type[Filter]) -> None:
    """Register a judge filter under `name` for YAML ``filter: - function: name``.

    lm-eval resolves the name when the task is built; the task's ``custom_dataset: !function``
    in the same YAML imports the module (and so registers the filter) first.
    """
    from lm_eval.api.registry import filter_registry

    if name not in filter_registry:
        filter_registry.register(name)(cls)


def load_verdict(value: Any) -> Verdict | None:
    """The judge verdict of a filtered response (JSON text as the filters return it, or a dict); None if not one."""
    return verdict_of(value)


def decode_verdict(results: list[Any], task_name: str, filter_name: str = "judge", kind: str = "judge") -> Verdict:
    """The verdict of a process_results call's first result, or a RuntimeError naming the filter to keep."""
    verdict = verdict_of(results[0])
    if verdict is None:
        raise RuntimeError(f"{task_name} without a {kind} verdict: keep the task's `{filter_name}` filter "
                           "in filter_list")
    return verdict


def verdict_metrics(verdict: Verdict, metric: str = "score") -> dict[str, float]:
    """A verdict's metric values: `metric` (scored or tampered, at the minimum; absent when unscored, so the
    mean leaves it out), ``<metric>_pessimistic`` (unscored counted as the scale's minimum), the 0/1 counts
    ``judge_unscored`` and ``judge_tampered`` (summed) and ``judge_cost_usd`` (absent when unpriced)."""
    out: dict[str, float] = {f"{metric}_pessimistic": verdict.pessimistic(),
                             "judge_unscored": float(verdict.status == UNSCORED),
                             "judge_tampered": float(verdict.status == TAMPERED)}
    if verdict.value is not None:
        out[metric] = float(verdict.value)
    if verdict.cost_usd is not None:
        out["judge_cost_usd"] = float(verdict.cost_usd)
    return out


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """Metric values of one judged sample (:func:`verdict_metrics`)."""
    return verdict_metrics(decode_verdict(results, "judged task"))


def total(values: Sequence[float]) -> float:
    """Sum aggregation (lm-eval has none built in): unscored counts and judge cost add up."""
    return float(sum(values))


def mean_stderr(values: Sequence[float]) -> float | str:
    """Standard error of the mean (as lm-eval's `mean` stderr), "N/A" below two values."""
    n = len(values)
    if n < 2:
        return "N/A"
    m = sum(values) / n
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1) / n)

