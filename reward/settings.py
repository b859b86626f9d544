"""The LongReward settings, one class: :class:`RewardConfig` is the scorer's configuration and the schema of
``lr-eval score`` flags, lm-eval ``reward_*`` metadata keys and the ``[score]`` table of ``lr-train run``
(``build_scorer(config, judge)`` in ``lr_eval.reward.engine`` is the way tasks and train get a scorer).

Each option field (:func:`lr_eval.options.option`) is one option: ``--retrieval-chunk-tokens`` on the command
line, ``reward_retrieval_chunk_tokens`` in lm-eval metadata, ``retrieval_chunk_tokens`` (or
``retrieval-chunk-tokens``) in TOML; the other fields (temperature, per-stage ``max_tokens``, the parsed
fraction, the empty-response policy) are set from Python only. :meth:`RewardConfig.for_judge` gives the
embedded judge its smaller window.

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
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from lr_eval.options import (
    add_options,
    argv_of,
    coerce_values,
    default_of,
    from_args,
    opt_of,
    option,
    option_fields,
)
from lr_eval.records import FieldError, check_version

from . import prompts
from .records import DIMENSIONS

#: The judge's context window when nothing says otherwise, and that of the embedded judge (SmolLM2-135M-Instruct).
DEFAULT_WINDOW = 128_000
EMBEDDED_WINDOW = 8192
SETTINGS_VERSION = 1


@dataclass
class RewardConfig:
    """LongReward method settings (see the module docstring for the three spellings and the defaults)."""

    embedder: str = option("local", "retrieval embedder: local (all-MiniLM-L6-v2, offline), local:PATH, "
                           "openai:MODEL or bm25", metavar="SPEC")
    embed_base_url: str | None = option(None, "endpoint for openai:MODEL embeddings", metavar="URL")
    embed_api_key_env: str = option("LR_EMBED_API_KEY", "environment variable with the embedding API key "
                                    "(then OPENAI_API_KEY)", metavar="VAR", result=False)
    embed_cache: str | None = option(None, "SQLite cache of embeddings, or 'none' (default: beside the judge cache)",
                                     metavar="PATH", result=False)
    language: str = option("auto", "prompt language; auto picks it from the question and context",
                           choices=("auto", *prompts.LANGUAGES))
    k: int = option(5, "passages per statement", metavar="N")
    retrieval_chunk_tokens: int = option(128, "tokens per retrieval chunk (the paper's)", metavar="N")
    extraction_chunk_tokens: int = option(4096, "tokens per completeness extraction chunk (the paper's)",
                                          metavar="N")
    weights: tuple[float, float, float, float] = option(
        (1.0, 1.0, 1.0, 1.0), "dimension weights: helpfulness, logicality, faithfulness, completeness "
        "(0 skips one)", metavar="H,L,F,C")
    tokenizer: str | None = option(None, "chunking tokenizer, hub name or local path (default: the embedded "
                                       "model's if installed, else all-MiniLM-L6-v2's; results name the one used)",
                                       metavar="NAME")
    reasks: int = option(1, "re-asks of an unparseable answer", metavar="N")
    judge_window: int | None = option(DEFAULT_WINDOW, "judge context window; longer prompts are unscored, not sent "
                                      f"(default {DEFAULT_WINDOW}, {EMBEDDED_WINDOW} for the embedded judge; "
                                      "0 = do not check)", metavar="TOKENS", zero_is_none=True)
    max_context_tokens: int | None = option(262_144, "longer contexts lose their middle (flag context_truncated; "
                                            "0 = no limit)", metavar="N", zero_is_none=True)
    max_statements: int | None = option(None, "judge at most N statements per response (default: all, as the "
                                        "paper)", metavar="N")
    support_batch: int = option(8, "statements judged per support call, their passages shown once (default 8, our "
                                "choice; 1 = one call per statement, as the paper)", metavar="N")
    judge_max_tokens: int | None = option(None, "output budget of every judge call (default: per stage, see the "
                                          "README)", metavar="N")
    groups_in_flight: int = option(16, "prompts prepared and judged at the same time", metavar="N", result=False)
    # set from Python only
    temperature: float = 0.0
    max_tokens: dict[str, int] = field(default_factory=lambda: dict(prompts.DEFAULT_MAX_TOKENS))
    min_parsed_fraction: float = 0.5   # of statements / document parts that need a verdict
    empty_policy: str = "zero"         # "zero" or "unscored"

    def __post_init__(self) -> None:
        self.weights = _weights(self.weights)
        if self.language not in ("auto", *prompts.LANGUAGES):
            raise FieldError("language", f"must be auto, {' or '.join(prompts.LANGUAGES)}, not {self.language!r}")
        if self.empty_policy not in ("zero", "unscored"):
            raise FieldError("empty_policy", f"must be 'zero' or 'unscored', not {self.empty_policy!r}")
        for name in ("k", "retrieval_chunk_tokens", "extraction_chunk_tokens"):
            if getattr(self, name) < 1:
                raise FieldError(name, "k and the chunk sizes must be positive")
        if self.support_batch < 1:
            raise FieldError("support_batch", "must be at least 1 (1 = one support call per statement)")
        if not 0.0 <= self.min_parsed_fraction <= 1.0:
            raise FieldError("min_parsed_fraction", "must be between 0 and 1")
        self.judge_window = self.judge_window or None
        self.max_context_tokens = self.max_context_tokens or None
        self.max_tokens = {**prompts.DEFAULT_MAX_TOKENS, **self.max_tokens}
        if self.judge_max_tokens:
            self.max_tokens = dict.fromkeys(self.max_tokens, self.judge_max_tokens)

    # -- the method's view ------------------------------------------------------------------------------------
    def weight(self, dim: str) -> float:
        return self.weights[DIMENSIONS.index(dim)]

    def enabled(self) -> list[str]:
        """Dimensions with a positive weight; the others are not computed at all."""
        return [d for d in DIMENSIONS if self.weight(d) > 0]

    def for_judge(self, judge: Any) -> RewardConfig:
        """These settings for `judge` (a JudgeConfig): the embedded judge's window unless another was set."""
        if getattr(judge, "backend", None) == "embedded" and self.judge_window == DEFAULT_WINDOW:
            return dataclasses.replace(self, judge_window=EMBEDDED_WINDOW)
        return self

    def result_key(self) -> dict[str, Any]:
        """The settings that change a result (a resume key's part): all but where caches live, which key
        variable is read and how many prompts are in flight."""
        quiet = {f.name for f in option_fields(RewardConfig) if not opt_of(f).result}
        return {k: v for k, v in self.to_dict().items() if k not in quiet}

    # -- sources ----------------------------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = "", where: str = "",
                     ignore_others: bool = False) -> RewardConfig:
        """Settings from ``{<prefix><name>: value}`` (``-`` or ``_`` in names; a list of weights is fine).

        Keys without the prefix are left alone; with ``ignore_others`` False an unknown key is an error.
        Values may be text (lm-eval's ``--metadata`` and environment-style sources) or typed (TOML, JSON).
        """
        mine = {key[len(prefix):]: value for key, value in values.items() if key.startswith(prefix)}
        try:
            given = coerce_values([cls], mine, ignore_others=ignore_others)[cls]
            return cls(**given)
        except FieldError as e:
            problem = e.problem
            if problem == "unknown key":
                known = ", ".join(prefix + f.name for f in option_fields(cls))
                problem = f"unknown LongReward setting (known: {known})"
            raise FieldError(prefix + e.field, problem, where) from None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RewardConfig:
        """Settings from the flags of :func:`add_reward_args` (argparse has typed them already)."""
        return cls(**from_args(cls, args))

    def to_dict(self) -> dict[str, Any]:
        d = {"version": SETTINGS_VERSION, **{f.name: getattr(self, f.name) for f in fields(self)}}
        d["weights"] = list(self.weights)
        d["max_tokens"] = dict(self.max_tokens)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RewardConfig:
        check_version(d, SETTINGS_VERSION, "LongReward settings")
        names = {f.name for f in option_fields(cls)}
        internal = {k: v for k, v in d.items() if k != "version" and k not in names}
        unknown = set(internal) - {f.name for f in fields(cls)}
        if unknown:
            raise FieldError(sorted(unknown)[0], "unknown LongReward setting")
        config = cls.from_mapping({k: v for k, v in d.items() if k in names})
        return dataclasses.replace(config, **internal) if internal else config

    def to_argv(self) -> list[str]:
        """The flags that give these settings (only the options that differ from the defaults)."""
        changed = {f.name: getattr(self, f.name) for f in option_fields(self)
                   if getattr(self, f.name) != _normal(f.name, default_of(f))}
        if "weights" in changed:
            changed["weights"] = ",".join(f"{w:g}" for w in self.weights)
        return argv_of([RewardConfig], changed)


#: The name the tasks and the ``lr-train run`` documentation use for the same settings.
RewardSettings = RewardConfig


def _normal(name: str, value: Any) -> Any:
    return _weights(value) if name == "weights" else value


def _weights(value: Any) -> tuple[float, float, float, float]:
    """Four non-negative weights, not all zero, from a tuple, a list or text like 1,1,0,1."""
    try:
        parts = str(value).split(",") if isinstance(value, str) else list(value)
        weights = tuple(float(x) for x in parts)
    except (TypeError, ValueError):
        weights = ()
    if len(weights) != 4:
        raise FieldError("weights", f"expected four numbers like 1,1,1,1, got {value!r}")
    if any(w < 0 for w in weights) or not any(weights):
        raise FieldError("weights", "four non-negative numbers (helpfulness, logicality, faithfulness, "
                         "completeness), not all zero")
    return weights[0], weights[1], weights[2], weights[3]


def add_reward_args(parser: argparse.ArgumentParser) -> None:
    """The LongReward flags (one per option field of RewardConfig) as an argument group."""
    add_options(parser.add_argument_group("LongReward method"), RewardConfig)
