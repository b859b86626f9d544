"""Judge configuration from (in rising priority) defaults, a TOML file, environment variables and CLI flags.

The API key itself is never part of the configuration: only the *name* of the
environment variable that holds it, so that no cache, log or result file can
ever contain the key.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .accounting import UsageMeter, load_prices
from .cache import ResponseCache
from .errors import UserError
from .flags import truthy
from .options import add_options, option
from .redaction import redact, register_secret, register_url

if TYPE_CHECKING:
    from .backends import Backend
    from .judge import JudgeClient

BACKENDS = ("openai", "transformers", "vllm", "embedded")
STRUCTURED = ("off", "auto", "on")
SCORE_FROM = ("text", "logprobs")
#: The forms an OpenAI-compatible server takes a grammar in (lr_eval.backends.structured_body).
SERVER_FORMS = ("structured_outputs", "guided_regex", "regex", "json_schema")


class ConfigError(UserError, ValueError):
    """A judge setting that cannot work, named with its source."""


def cache_dir() -> Path:
    """Where the project keeps caches and the converted embedded model."""
    return Path(os.environ.get("LR_EVAL_CACHE_DIR", Path.home() / ".cache" / "longreward-eval"))


@dataclass
class JudgeConfig:
    """Everything needed to build a JudgeClient. Field names match the TOML keys and `LR_JUDGE_<NAME>`."""

    # The option fields are the judge flags of every judging command (add_judge_args), dests judge_<name>.
    backend: str = option("openai", "judge backend (openai: any OpenAI-compatible endpoint)", choices=BACKENDS,
                          flag="judge_backend")
    base_url: str | None = option(None, "e.g. http://localhost:8000/v1", metavar="URL")
    model: str | None = option(None, "judge model name (or local path)", metavar="NAME")
    api_key_env: str = option("LR_JUDGE_API_KEY", "environment variable holding the API key (then OPENAI_API_KEY)",
                              metavar="VAR")
    max_tokens: int = 1024
    concurrency: int = option(16, "judge requests in flight", metavar="N")
    timeout: float = option(120.0, "per-request timeout in seconds", metavar="S")
    max_retries: int = option(6, "retries of a failed request", metavar="N")
    cache: str | None = option(None, "SQLite cache file, or 'none' (default: ~/.cache/longreward-eval/"
                               "judge-cache.sqlite)", metavar="PATH")
    max_cost: float | None = option(None, "hard budget", metavar="USD")
    max_requests: int | None = option(None, "hard budget", metavar="N")
    prices: str | None = option(None, "JSON price table {model: [usd_in_per_1M, usd_out_per_1M]}", metavar="FILE")
    price_input: float | None = option(None, "per 1M tokens", metavar="USD")
    price_output: float | None = option(None, "per 1M tokens", metavar="USD")
    system_prompt: str | None = option(None, "system message of every judge request", metavar="TEXT")
    dry_run: bool = False
    claim_lease: float = 30.0          # seconds a claim on a shared cache lives without its owner's heartbeat
    structured: str = option("auto", "enforce each template's answer format while decoding (default auto: on for "
                             "in-process backends, off for remote endpoints)", choices=STRUCTURED)
    structured_form: str = option("structured_outputs", "how an OpenAI-compatible server takes the grammar (default "
                                  "structured_outputs: vLLM >= 0.10.2)", choices=SERVER_FORMS)
    score_from: str = option("text", "1-N ratings from the text (default) or probability-weighted from logprobs "
                             "(G-Eval)", choices=SCORE_FROM)

    def structured_mode(self) -> str | None:
        """The form answer formats are enforced in for this backend, or None when they are not."""
        on = self.structured == "on" or (self.structured == "auto" and self.backend != "openai")
        if not on:
            return None
        return {"openai": self.structured_form, "vllm": "vllm"}.get(self.backend, "llguidance")

    @property
    def configured(self) -> bool:
        """True when the user named a judge (anything but the bare defaults)."""
        return self.backend != "openai" or bool(self.base_url or self.model)

    def describe(self) -> str:
        """The judge in words, for reports and results files: a URL's user-info is never in it."""
        register_url(self.base_url)
        where = redact(self.base_url) if self.base_url else None
        where = where or ("api.openai.com" if self.backend == "openai" else "in-process")
        return f"{self.model or '(embedded SmolLM2-135M-Instruct)'} via {self.backend} at {where}"

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or os.environ.get("OPENAI_API_KEY")

    def api_key_source(self) -> str:
        """The variable the key is read from (what a refused-credentials message names)."""
        if os.environ.get(self.api_key_env) or not os.environ.get("OPENAI_API_KEY"):
            return self.api_key_env
        return "OPENAI_API_KEY"

    def cache_path(self) -> Path | None:
        if self.cache and self.cache.lower() == "none":
            return None
        return Path(self.cache).expanduser() if self.cache else cache_dir() / "judge-cache.sqlite"

    def written_paths(self) -> dict[str, Path | None]:
        """The files judging writes besides a command's outputs (for `jsonl.check_paths`)."""
        return {"judge cache (--cache)": self.cache_path()}

    def read_paths(self) -> dict[str, str | None]:
        """The files the judge settings read (for `jsonl.check_paths`): no output may replace them."""
        return {"price table (--prices)": self.prices}

    # -- sources -----------------------------------------------------------------
    @classmethod
    def load(cls, file: str | Path | None = None, env: dict[str, str] | None = None,
             overrides: dict[str, Any] | None = None) -> JudgeConfig:
        """Merge defaults < TOML file (`[judge]` table or top level) < LR_JUDGE_* < overrides."""
        env = dict(os.environ if env is None else env)
        cfg = cls()
        file = file or env.get("LR_JUDGE_CONFIG")
        if file:
            try:
                data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
                raise ConfigError(f"judge config file {file}: {e}") from None
            cfg._update(data.get("judge", data), f"config file {file}")
        cfg._update({f.name: env[f"LR_JUDGE_{f.name.upper()}"] for f in fields(cls)
                     if f"LR_JUDGE_{f.name.upper()}" in env}, "environment")
        cfg._update({k: v for k, v in (overrides or {}).items() if v is not None}, "arguments")
        if cfg.backend not in BACKENDS:
            raise ConfigError(f"judge backend must be one of {', '.join(BACKENDS)}, not {cfg.backend!r}")
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Refuse values that would hang or misbehave (concurrency 0, a negative budget...) before any work."""
        checks = [("concurrency", self.concurrency, 1), ("max_tokens", self.max_tokens, 1),
                  ("max_retries", self.max_retries, 0), ("max_cost", self.max_cost, 0),
                  ("max_requests", self.max_requests, 0), ("price_input", self.price_input, 0),
                  ("price_output", self.price_output, 0)]
        for name, value, low in checks:
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"judge setting {name} must be a finite number, not {value}")
            if value is not None and value < low:
                raise ConfigError(f"judge setting {name} must be at least {low}, not {value}")
        for name, choice, allowed in (("structured", self.structured, STRUCTURED),
                                     ("structured_form", self.structured_form, SERVER_FORMS),
                                     ("score_from", self.score_from, SCORE_FROM)):
            if choice not in allowed:
                raise ConfigError(f"judge setting {name} must be one of {', '.join(allowed)}, not {choice!r}")
        for name, value in (("timeout", self.timeout), ("claim_lease", self.claim_lease)):
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"judge setting {name} must be a positive number of seconds, not {value}")

    def _update(self, values: dict[str, Any], source: str) -> None:
        types = {f.name: f.type for f in fields(self)}
        for key, value in values.items():
            if key not in types:
                raise ConfigError(f"{source}: unknown judge setting {key!r} (known: {', '.join(types)})")
            setattr(self, key, _coerce(value, str(types[key]), f"{source}: {key}"))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> JudgeConfig:
        overrides = {f.name: getattr(args, f"judge_{f.name}", None) for f in fields(cls)}
        overrides["dry_run"] = getattr(args, "dry_run", None) or None
        return cls.load(getattr(args, "judge_config", None), overrides=overrides)


def _coerce(value: Any, type_name: str, where: str) -> Any:
    if value is None or value == "":
        return None
    try:
        if "bool" in type_name:
            return truthy(value)
        if "float" in type_name:
            return float(value)
        if "int" in type_name:
            return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: cannot read {value!r} as {type_name}") from None
    return str(value)


def add_judge_args(parser: argparse.ArgumentParser, dry_run: bool = True) -> None:
    """The judge options shared by every command that judges."""
    g = parser.add_argument_group("judge (also LR_JUDGE_* variables or a TOML file)")
    g.add_argument("--judge-config", metavar="FILE", help="TOML file with judge settings")
    # Not given: absent (None in from_args), so a file or LR_JUDGE_* variable can set it; help shows the default.
    add_options(g, JudgeConfig, dest_prefix="judge_", suppress=True)
    if dry_run:
        g.add_argument("--dry-run", action="store_true", help="estimate calls, tokens and cost; send nothing")


def refuse_credentials_in_url(url: str | None, setting: str, key_var: str) -> None:
    """A base URL with user-info (`user:password@host`) cannot carry the key: the key travels as a bearer
    token, and the HTTP clients either refuse a request carrying both (aiohttp: every request would fail
    after its retries) or send the URL's user-info instead of the key (httpx). Refused before any request."""
    from urllib.parse import urlsplit

    parts = urlsplit(url or "")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{setting} {redact(url or '')} carries credentials before the host: give the URL "
                          f"without them and the key in the environment ({key_var})")


def build_client(cfg: JudgeConfig, show_progress: bool = True, backend: Backend | None = None) -> JudgeClient:
    """The JudgeClient for a configuration (loading a local model lazily, on first use).

    `backend` reuses an existing backend (e.g. an already loaded local model).
    """
    from .backends import OpenAIBackend, TransformersBackend, VLLMBackend
    from .judge import JudgeClient

    if backend is not None:
        pass
    elif cfg.backend == "openai":
        if not cfg.model:
            raise ConfigError("no judge model: pass --model NAME (or set LR_JUDGE_MODEL)")
        key = cfg.api_key()
        register_secret(key)
        register_url(cfg.base_url)
        refuse_credentials_in_url(cfg.base_url, "judge setting base_url", cfg.api_key_env)
        backend = OpenAIBackend(cfg.model, cfg.base_url, key, cfg.timeout, cfg.api_key_source())
    elif cfg.backend == "embedded":
        from .embedded import embedded_model_path

        backend = TransformersBackend(embedded_model_path(), model=cfg.model or "SmolLM2-135M-Instruct")
    elif cfg.backend == "transformers":
        if not cfg.model:
            raise ConfigError("the transformers backend needs --model PATH_OR_NAME")
        backend = TransformersBackend(cfg.model)
    else:
        if not cfg.model:
            raise ConfigError("the vllm backend needs --model PATH_OR_NAME")
        backend = VLLMBackend(cfg.model)
    prices = load_prices(cfg.prices)
    price = prices.get(backend.model)
    if cfg.price_input is not None or cfg.price_output is not None:
        price = (cfg.price_input or 0.0, cfg.price_output or 0.0)
    if price is None and cfg.backend != "openai":
        price = (0.0, 0.0)  # in-process models cost nothing per token
    meter = UsageMeter(model=backend.model, price=price, max_cost=cfg.max_cost, max_requests=cfg.max_requests)
    if isinstance(backend, OpenAIBackend):
        backend.meter = meter  # counts the answers a server sent outside the format it was asked to enforce
    path = cfg.cache_path()
    return JudgeClient(backend, cache=ResponseCache(path) if path else None, concurrency=cfg.concurrency,
                       max_retries=cfg.max_retries, meter=meter, dry_run=cfg.dry_run,
                       default_max_tokens=cfg.max_tokens, show_progress=show_progress,
                       system_prompt=cfg.system_prompt, claim_lease=cfg.claim_lease,
                       structured=cfg.structured_mode(), score_from=cfg.score_from)
