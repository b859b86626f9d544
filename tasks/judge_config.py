"""The judge of a judged lm-eval task, read from the task's metadata.

The judge is configured exactly like every other judging command: ``LR_JUDGE_*`` variables, a TOML file
(``LR_JUDGE_CONFIG``), or lm-eval ``--metadata`` keys ``judge_<setting>`` (e.g. ``{"judge_model": "gpt-4o",
"judge_base_url": "...", "judge_config": "judge.toml"}``), which win. A judged task's loader calls
:func:`require_judge` at build time, so a run with no judge stops with a clear message *before* the model
generates anything; ``--predict_only`` runs need no judge (``lr-eval rejudge`` scores their samples later).
"""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any

from lr_eval.config import JudgeConfig, build_client
from lr_eval.judge import JudgeClient

from .lm_eval_adapter import predict_only_requested

log = logging.getLogger(__name__)

#: --metadata keys that configure the judge: ``judge_<JudgeConfig field>`` plus these.
JUDGE_PREFIX = "judge_"
JUDGE_FILE_KEY = "judge_config"        # a TOML file, like LR_JUDGE_CONFIG
JUDGE_REASKS_KEY = "judge_reasks"      # re-asks of an unparseable answer (default 1)
DEFAULT_REASKS = 1


class JudgeNotConfigured(RuntimeError):
    """A judged task was asked for but no judge is configured."""


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


def build_judge(task: str, metadata: dict[str, Any] | None) -> tuple[JudgeClient, JudgeConfig]:
    """The judge client for a task, or JudgeNotConfigured."""
    cfg = load_judge_config(metadata)
    if not cfg.configured:
        raise JudgeNotConfigured(no_judge_message(task))
    return build_client(cfg), cfg


def reasks_from(metadata: dict[str, Any] | None, default: int = DEFAULT_REASKS) -> int:
    """Re-asks of an unparseable judge answer: ``--metadata judge_reasks``, else `default`."""
    value = (metadata or {}).get(JUDGE_REASKS_KEY)
    return default if value is None else int(value)
