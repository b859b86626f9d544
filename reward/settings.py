"""The LongReward settings: one schema for ``lr-eval score`` flags, lm-eval ``reward_*`` metadata keys and the
``[score]`` table of ``lr-train run``, and ``build_scorer(settings, judge)``, the way tasks and train get a scorer.

Each field of :class:`RewardSettings` is one option: ``--retrieval-chunk-tokens`` on the command line,
``reward_retrieval_chunk_tokens`` in lm-eval metadata, ``retrieval_chunk_tokens`` (or
``retrieval-chunk-tokens``) in TOML. :meth:`RewardSettings.config` turns them into the scorer's
:class:`~lr_eval.reward.scorer.RewardConfig` for one judge.

Defaults follow the paper where it says something (128-token retrieval chunks, k = 5, 4096-token
extraction chunks, equal weights) and are our own where it does not. Two of ours differ from what the
paper and the reference code do, and change the judge calls:

* support batching: ``support_batch`` = 8 statements are judged per support call, their passages shown
  once; the paper makes one call per statement (``support_batch = 1`` does that, byte-identical prompts).
* output budgets (``max_tokens``) per stage, from :data:`lr_eval.reward.prompts.DEFAULT_MAX_TOKENS`:
  helpfulness, logicality and completeness 512, statement extraction 1024 (the reference code allows
  2048), support 384 per statement (1536 for a batch), information extraction 768;
  ``judge_max_tokens`` sets one budget for every stage.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lr_eval.records import FieldError, check_version

from .scorer import LongRewardScorer, RewardConfig

#: Context window of the embedded judge (SmolLM2-135M-Instruct): its default ``judge_window``.
EMBEDDED_WINDOW = 8192
SETTINGS_VERSION = 1
_D = RewardConfig()


def _opt(default: Any, help: str = "", metavar: str | None = "N", choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "metavar": metavar, "choices": choices})


@dataclass(frozen=True)
class RewardSettings:
    """LongReward options as the user gives them (see the module docstring for the three spellings)."""

    embedder: str = _opt(_D.embedder, "retrieval embedder: local (all-MiniLM-L6-v2, offline), local:PATH, "
                         "openai:MODEL or bm25 (default %(default)s)", "SPEC")
    embed_base_url: str | None = _opt(None, "endpoint for openai:MODEL embeddings", "URL")
    embed_api_key_env: str = _opt("LR_EMBED_API_KEY", "environment variable with the embedding API key "
                                  "(default %(default)s, then OPENAI_API_KEY)", "VAR")
    embed_cache: str | None = _opt(None, "SQLite cache of embeddings, or 'none' (default: beside the judge cache)",
                                   "PATH")
    language: str = _opt(_D.language, "prompt language; auto picks it from the question and context", None,
                         ("auto", "en", "zh"))
    k: int = _opt(_D.k, "passages per statement (default %(default)s)")
    retrieval_chunk_tokens: int = _opt(_D.retrieval_chunk_tokens)
    extraction_chunk_tokens: int = _opt(_D.extraction_chunk_tokens)
    weights: str = _opt("1,1,1,1", "dimension weights: helpfulness, logicality, faithfulness, completeness "
                        "(0 skips one)", "H,L,F,C")
    tokenizer: str | None = _opt(None, "chunking tokenizer (default: the embedded model's)", "NAME")
    reasks: int = _opt(_D.reasks, "re-asks of an unparseable answer")
    judge_window: int | None = _opt(None, f"judge context window; longer prompts are unscored, not sent (default "
                                    f"{_D.judge_window}, {EMBEDDED_WINDOW} for the embedded judge; 0 = do not check)",
                                    "TOKENS")
    max_context_tokens: int = _opt(_D.max_context_tokens, "longer contexts lose their middle (flag "
                                   "context_truncated; 0 = no limit)")
    max_statements: int | None = _opt(None, "judge at most N statements per response")
    support_batch: int = _opt(_D.support_batch, "statements judged per support call, their passages shown once "
                              "(default %(default)s, our choice; 1 = one call per statement, as the paper)")
    judge_max_tokens: int | None = _opt(None, "output budget of every judge call (default: per stage, "
                                        "see the README)")
    groups_in_flight: int = _opt(16, "prompts prepared and judged at the same time (default %(default)s)")

    def __post_init__(self) -> None:
        try:
            self.config()  # every check of the method settings, now rather than after generation
        except FieldError:
            raise
        except ValueError as e:  # RewardConfig's own checks
            raise FieldError(_field_of(str(e)), str(e)) from None

    # -- the scorer's view ----------------------------------------------------------------------------------
    def parsed_weights(self) -> tuple[float, float, float, float]:
        try:
            weights: tuple[float, ...] = tuple(float(x) for x in str(self.weights).split(","))
        except ValueError:
            weights = ()
        if len(weights) != 4:
            raise FieldError("weights", f"expected four numbers like 1,1,1,1, got {self.weights!r}")
        return weights

    def config(self, judge: Any = None) -> RewardConfig:
        """The scorer's settings for `judge` (a JudgeConfig; the embedded judge has a smaller window)."""
        window = self.judge_window
        if window is None:
            window = EMBEDDED_WINDOW if getattr(judge, "backend", None) == "embedded" else _D.judge_window
        cfg = RewardConfig(retrieval_chunk_tokens=self.retrieval_chunk_tokens,
                           extraction_chunk_tokens=self.extraction_chunk_tokens, k=self.k,
                           weights=self.parsed_weights(), language=self.language, reasks=self.reasks,
                           tokenizer=self.tokenizer, embedder=self.embedder, judge_window=window or None,
                           max_context_tokens=self.max_context_tokens or None, max_statements=self.max_statements,
                           support_batch=self.support_batch)
        if self.judge_max_tokens:
            cfg.max_tokens = {k: self.judge_max_tokens for k in cfg.max_tokens}
        return cfg

    # -- sources ----------------------------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = "", where: str = "",
                     ignore_others: bool = False) -> RewardSettings:
        """Settings from ``{<prefix><name>: value}`` (``-`` or ``_`` in names; a list of weights is fine).

        Keys without the prefix are left alone; with ``ignore_others`` False an unknown key is an error.
        Values may be text (lm-eval's ``--metadata`` and environment-style sources) or typed (TOML, JSON).
        """
        known = {f.name: f for f in fields(cls)}
        given: dict[str, Any] = {}
        for key, value in values.items():
            if not key.startswith(prefix):
                continue
            name = key[len(prefix):].replace("-", "_")
            if name not in known:
                if ignore_others:
                    continue
                raise FieldError(key, "unknown LongReward setting (known: "
                                 + ", ".join(prefix + n for n in known) + ")", where)
            try:
                given[name] = _coerce(value, known[name])
            except FieldError as e:
                raise FieldError(key, e.problem, where) from None
        try:
            return cls(**given)
        except FieldError as e:
            raise FieldError(prefix + e.field, e.problem, where) from None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RewardSettings:
        """Settings from the flags of :func:`add_arguments` (argparse has typed them already)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})

    def to_dict(self) -> dict[str, Any]:
        return {"version": SETTINGS_VERSION, **{f.name: getattr(self, f.name) for f in fields(self)}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RewardSettings:
        check_version(d, SETTINGS_VERSION, "LongReward settings")
        return cls.from_mapping({k: v for k, v in d.items() if k != "version"})

    def to_argv(self) -> list[str]:
        """The flags that give these settings (only those that differ from the defaults)."""
        out: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out += ["--" + f.name.replace("_", "-"), str(value)]
        return out


def add_reward_args(parser: argparse.ArgumentParser) -> None:
    """The LongReward flags (one per field of RewardSettings) as an argument group."""
    g = parser.add_argument_group("LongReward method")
    for f in fields(RewardSettings):
        kind = _base_type(f)
        kwargs: dict[str, Any] = {"default": f.default, "help": f.metadata["help"] or None}
        if f.metadata["choices"]:
            kwargs["choices"] = f.metadata["choices"]
        else:
            kwargs["metavar"] = f.metadata["metavar"]
        if kind is int:
            kwargs["type"] = int
        g.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def _base_type(f: Any) -> type:
    return int if str(f.type).startswith("int") else str


def _coerce(value: Any, f: Any) -> Any:
    if value is None or (value == "" and f.default is None):
        if f.default is not None:
            raise FieldError(f.name, f"expected a value, got {value!r}")
        return None
    if _base_type(f) is int:
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise FieldError(f.name, f"expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise FieldError(f.name, f"expected an integer, got {value!r}") from None
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, (dict, bool)):
        raise FieldError(f.name, f"expected text, got {value!r}")
    return str(value)


def _field_of(message: str) -> str:
    """The setting a RewardConfig error is about (its messages start with the field's name)."""
    head = message.split(":")[0].split(" ")[0]
    return head if head in {f.name for f in fields(RewardSettings)} else "settings"


def build_scorer(settings: RewardSettings, judge: Any) -> LongRewardScorer:
    """The LongReward scorer for these settings and this judge (a JudgeConfig): its client, embedder and config."""
    from lr_eval.config import build_client
    from lr_eval.embed import build_embedder

    cache: Any = None
    if settings.embed_cache and settings.embed_cache.lower() != "none":
        cache = Path(settings.embed_cache).expanduser()
    elif settings.embed_cache is None and judge.cache_path() is not None:
        cache = judge.cache_path().parent / "embed-cache.sqlite"
    embedder = build_embedder(settings.embedder, base_url=settings.embed_base_url,
                              api_key_env=settings.embed_api_key_env, cache=cache)
    return LongRewardScorer(build_client(judge), settings.config(judge), embedder=embedder)
