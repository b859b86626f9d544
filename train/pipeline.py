"""`lr-train run CONFIG`, which chains sample → score → pairs → dpo (the score step: train/score.py).

Run config (TOML): a ``[run]`` table and one table per step, whose keys are that subcommand's long
options with ``_`` or ``-`` (``base_url = "..."`` is ``--base-url``; ``true`` / ``false`` switch a
flag; a list becomes a comma-separated value) or its positional arguments by name.  Each table is read
straight into the step's settings classes, the same dataclasses whose fields are the subcommand's flags
(``PolicyConfig`` and ``SampleConfig``; ``JudgeConfig`` and ``lr_eval.reward.RewardConfig``, also the
``reward_*`` metadata keys of ``longreward_longqa``; ``PairPolicy``; ``DPOConfig``), and the step runs
as a function of them (``train/steps.py``): no command line in between; ``--plan`` shows the equivalent
commands.  Files are chained through ``[run] workdir``::

    [run]
    workdir = "runs/exp1"      # samples.jsonl, scores.jsonl, pairs.jsonl, pairs.report.json, dpo/
    steps = ["sample", "score", "pairs", "dpo"]   # the default
    keep_going = false         # stop at the first step that fails (default)

    [sample]                   # the policy
    input = "prompts.jsonl"
    model = "sft-model"
    base_url = "http://localhost:8000/v1"

    [score]                    # the judge and the LongReward method
    model = "glm-4"
    base_url = "https://open.bigmodel.cn/api/paas/v4"

    [pairs]
    min_margin = 0.5

    [dpo]
    model = "/models/sft"      # defaults to [sample] model when the policy runs in-process

Relative paths are relative to the working directory.  Every step is resumable, so rerunning the
same config continues where it stopped (``dpo`` resumes from its latest checkpoint).
"""

from __future__ import annotations

import gc
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lr_eval.options import argv_of, coerce_values, key_index
from lr_eval.records import FieldError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STEPS = ("sample", "score", "pairs", "dpo")
POSITIONALS = {"sample": ("input",), "score": ("input",), "pairs": ("samples", "scores"), "dpo": ("train_file",)}


def load_config(path: str | Path) -> dict[str, Any]:
    """The TOML run config, with its tables checked."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"run config not found: {p}")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{p}: invalid TOML: {e}") from None
    unknown = set(data) - {"run", *STEPS}
    if unknown:
        raise ValueError(f"{p}: unknown table(s) {', '.join(sorted(unknown))} (known: run, {', '.join(STEPS)})")
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ValueError(f"{p}: [{name}] must be a table")
    return data


@dataclass
class Step:
    """One planned step: its name, the equivalent command line (shown) and the call that runs it."""

    name: str
    argv: list[str]
    run: Callable[[], int]


def _typed(classes: list[Any], table: dict[str, Any], where: str) -> dict[Any, dict[str, Any]]:
    """A step's table read into its settings classes; a bad key or value is one line naming it."""
    try:
        return coerce_values(classes, table)
    except FieldError as e:
        if e.problem == "unknown key":
            raise ValueError(f"{where}: unknown key {e.field!r} (known: {', '.join(sorted(key_index(classes)))})"
                             ) from None
        raise ValueError(f"{where}: {e.field} {e.problem}") from None


def score_table(table: dict[str, Any], where: str) -> tuple[Any, dict[str, Any]]:
    """The ``[score]`` table's LongReward keys read as settings (no command line in between), and the rest."""
    from lr_eval.reward.settings import RewardConfig

    names = set(key_index([RewardConfig]))
    mine = {k: v for k, v in table.items() if k.replace("-", "_") in names}
    rest = {k: v for k, v in table.items() if k not in mine}
    return RewardConfig.from_mapping(mine, where=where), rest


def _sample_step(table: dict[str, Any], files: list[str], where: str) -> Step:
    from .sample import PolicyConfig, SampleConfig
    from .steps import sample_step

    classes = [PolicyConfig, SampleConfig]
    typed = _typed(classes, table, where)
    if "model" not in typed[PolicyConfig]:
        raise ValueError(f"{where}: model is required (the policy: served name, or a local path)")
    policy, decoding = PolicyConfig(**typed[PolicyConfig]), SampleConfig(**typed[SampleConfig])
    return Step("sample", [files[0], "-o", files[1], *argv_of(classes, table)],
                lambda: sample_step(files[0], files[1], policy, decoding))


def _score_step(table: dict[str, Any], files: list[str], where: str) -> Step:
    from lr_eval.config import JudgeConfig

    from .score import score_samples
    from .steps import ScoreOptions

    settings, rest = score_table(table, where)
    classes = [ScoreOptions, JudgeConfig]
    typed = _typed(classes, rest, where)
    options = ScoreOptions(**typed[ScoreOptions])

    def run() -> int:
        # As `lr-train score` would: defaults < the judge config file < LR_JUDGE_* < the table.
        judge = JudgeConfig.load(options.judge_config, overrides={**typed[JudgeConfig],
                                                                  "dry_run": options.dry_run or None})
        return 1 if score_samples(settings, judge, files[0], files[1], audit=not options.no_audit) else 0

    return Step("score", [files[0], "-o", files[1], *argv_of(classes, rest), *settings.to_argv()], run)


def _pairs_step(table: dict[str, Any], files: list[str], where: str) -> Step:
    from .pairs import PairPolicy
    from .steps import PairsOptions, pairs_step

    classes = [PairsOptions, PairPolicy]
    typed = _typed(classes, table, where)
    policy, options = PairPolicy(**typed[PairPolicy]), PairsOptions(**typed[PairsOptions])
    return Step("pairs", [files[0], files[1], "-o", files[2], *argv_of(classes, table)],
                lambda: pairs_step(files[0], files[1], files[2], policy, options))


def _dpo_step(table: dict[str, Any], files: list[str], where: str) -> Step:
    from .dpo_config import DPOConfig
    from .steps import dpo_config_of, dpo_step

    typed = _typed([DPOConfig], table, where)[DPOConfig]
    config = dpo_config_of({**typed, "output_dir": files[1]}, files[0])
    return Step("dpo", [files[0], "--output-dir", files[1], *argv_of([DPOConfig], table)],
                lambda: dpo_step(config))


_BUILD = {"sample": _sample_step, "score": _score_step, "pairs": _pairs_step, "dpo": _dpo_step}


def steps_of(config: dict[str, Any], config_name: str = "config") -> list[Step]:
    """Every step of the config with its typed settings, files chained through the workdir."""
    run = dict(config.get("run", {}))
    unknown = set(run) - {"workdir", "steps", "keep_going"}
    if unknown:
        raise ValueError(f"{config_name} [run]: unknown key(s) {', '.join(sorted(unknown))} "
                         "(known: workdir, steps, keep_going)")
    if "workdir" not in run:
        raise ValueError(f"{config_name} [run]: workdir is required (the folder of the step outputs)")
    work = Path(str(run["workdir"]))
    tables = {s: dict(config.get(s, {})) for s in STEPS}
    sample_out = str(tables["sample"].pop("output", work / "samples.jsonl"))
    score_out = str(tables["score"].pop("output", work / "scores.jsonl"))
    pairs_out = str(tables["pairs"].pop("output", work / "pairs.jsonl"))
    tables["pairs"].setdefault("report", str(work / "pairs.report.json"))
    dpo_dir = str(tables["dpo"].pop("output_dir", tables["dpo"].pop("output-dir", work / "dpo")))
    if "model" not in tables["dpo"] and tables["sample"].get("backend") == "transformers":
        tables["dpo"]["model"] = tables["sample"]["model"]
    files = {
        "sample": [tables["sample"].pop("input", None), sample_out],
        "score": [tables["score"].pop("input", sample_out), score_out],
        "pairs": [tables["pairs"].pop("samples", sample_out), tables["pairs"].pop("scores", score_out), pairs_out],
        "dpo": [tables["dpo"].pop("train_file", pairs_out), dpo_dir],
    }
    steps = run.get("steps", list(STEPS))
    if isinstance(steps, str):
        steps = [s.strip() for s in steps.split(",") if s.strip()]
    bad = [s for s in steps if s not in STEPS]
    if bad or not steps:
        raise ValueError(f"{config_name} [run]: steps must be among {', '.join(STEPS)}, got {steps!r}")
    out: list[Step] = []
    for step in STEPS:
        if step not in steps:
            continue
        if any(a is None for a in files[step]):
            raise ValueError(f"{config_name} [{step}]: {', '.join(POSITIONALS[step])} is required")
        if step == "dpo" and "model" not in tables["dpo"]:
            raise ValueError(f"{config_name} [dpo]: model is required (the SFT model to train: HF id or folder)")
        out.append(_BUILD[step](tables[step], [str(f) for f in files[step]], f"{config_name} [{step}]"))
    return out


def plan(config: dict[str, Any], config_name: str = "config") -> list[tuple[str, list[str]]]:
    """(step, argv of its subcommand) for every step of the config: the commands `lr-train run` amounts to."""
    return [(s.name, s.argv) for s in steps_of(config, config_name)]


def run_pipeline(config_path: str | Path, steps: list[str] | None = None, keep_going: bool | None = None) -> int:
    """`lr-train run`: each planned step in turn, stopping at the first failure unless keep_going."""
    from lr_eval.progress import console as err_console

    config = load_config(config_path)
    if steps:
        config.setdefault("run", {})["steps"] = steps
    todo = steps_of(config, str(config_path))
    keep = bool(config.get("run", {}).get("keep_going", False)) if keep_going is None else keep_going
    worst = 0
    for n, step in enumerate(todo, 1):
        err_console.print(f"== step {n}/{len(todo)}: lr-train {step.name} {shlex.join(step.argv)}", markup=False,
                          highlight=False, style="bold")
        rc = int(step.run() or 0)
        gc.collect()  # an in-process policy of the sample step must not stay in memory during DPO
        if rc:
            worst = max(worst, rc)
            if not keep:
                err_console.print(f"[bold red]step {step.name} failed (exit {rc}); fix it and rerun "
                                  f"`lr-train run {config_path}`: finished work is kept")
                return rc
            err_console.print(f"[yellow]step {step.name} exited {rc}; keep_going: continuing")
    return worst
