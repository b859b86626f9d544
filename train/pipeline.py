"""`lr-train run CONFIG`, which chains sample → score → pairs → dpo (the score step: train/score.py).

Run config (TOML): a ``[run]`` table and one table per step, whose keys are that subcommand's long
options with ``_`` or ``-`` (``base_url = "..."`` is ``--base-url``; ``true`` / ``false`` switch a
flag; a list becomes a comma-separated value) or its positional arguments by name.  The LongReward
keys of ``[score]`` (``k``, ``embedder``, ``weights``...) are read straight into
``lr_eval.reward.RewardSettings``, the schema behind the flags of ``lr-eval score`` and the
``reward_*`` metadata keys of ``longreward_longqa``.  Files are
chained through ``[run] workdir``::

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

import argparse
import gc
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any



if TYPE_CHECKING:
    from lr_eval.reward import RewardSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STEPS = ("sample", "score", "pairs", "dpo")
POSITIONALS = {"sample": ("input",), "score": ("input",), "pairs": ("samples", "scores"), "dpo": ("train_file",)}


# ---------------------------------------------------------------------------------------------------------
# run CONFIG
# ---------------------------------------------------------------------------------------------------------

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


def _option_index(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.Action, str]]:
    """Long option name (underscored) → (action, option string); dests as a fallback."""
    index: dict[str, tuple[argparse.Action, str]] = {}
    for action in parser._actions:  # argparse has no public accessor
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        for s in action.option_strings:
            if s.startswith("--"):
                index.setdefault(s[2:].replace("-", "_"), (action, s))
    for action in parser._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs and not isinstance(action, argparse._HelpAction):
            index.setdefault(action.dest, (action, longs[0]))
    return index


def table_argv(parser: argparse.ArgumentParser, table: dict[str, Any], where: str) -> list[str]:
    """Options of one step's table as command-line arguments for its subcommand's parser."""
    index = _option_index(parser)
    argv: list[str] = []
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in index:
            known = ", ".join(sorted(k for k in index if not k.startswith("judge_")))
            raise ValueError(f"{where}: unknown key {key!r} (known: {known})")
        action, flag = index[name]
        if isinstance(action, argparse.BooleanOptionalAction):
            if not isinstance(value, bool):
                raise ValueError(f"{where}: {key} must be true or false")
            argv.append(flag if value else "--no-" + flag[2:])
        elif action.nargs == 0:
            if not isinstance(value, bool):
                raise ValueError(f"{where}: {key} must be true or false")
            if value:
                argv.append(flag)
        else:
            if isinstance(value, bool):
                raise ValueError(f"{where}: {key} takes a value, not {str(value).lower()}")
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            argv += [flag, str(value)]
    return argv


def score_table(table: dict[str, Any], where: str) -> tuple[RewardSettings, dict[str, Any]]:
    """The ``[score]`` table's LongReward keys read as settings (no command line in between), and the rest."""
    from dataclasses import fields

    from lr_eval.reward import RewardSettings

    names = {f.name for f in fields(RewardSettings)}
    mine = {k: v for k, v in table.items() if k.replace("-", "_") in names}
    rest = {k: v for k, v in table.items() if k not in mine}
    return RewardSettings.from_mapping(mine, where=where), rest


def plan(config: dict[str, Any], config_name: str = "config") -> list[tuple[str, list[str]]]:
    """(step, argv of its subcommand) for every step of the config, files chained through the workdir
    (for the score step, its LongReward settings as flags: what `lr-train score` would be given)."""
    return [(step, argv + (settings.to_argv() if settings else [])) for step, argv, settings in steps_of(config,
                                                                                                       config_name)]


def steps_of(config: dict[str, Any], config_name: str = "config"
             ) -> list[tuple[str, list[str], RewardSettings | None]]:
    """(step, argv of its subcommand, the score step's LongReward settings) for every step of the config."""
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
    dpo_dir = str(tables["dpo"].pop("output_dir", work / "dpo"))
    if "model" not in tables["dpo"] and tables["sample"].get("backend") == "transformers":
        tables["dpo"]["model"] = tables["sample"]["model"]
    positional = {
        "sample": [tables["sample"].pop("input", None)],
        "score": [tables["score"].pop("input", sample_out)],
        "pairs": [tables["pairs"].pop("samples", sample_out), tables["pairs"].pop("scores", score_out)],
        "dpo": [tables["dpo"].pop("train_file", pairs_out)],
    }
    outputs = {"sample": ["-o", sample_out], "score": ["-o", score_out], "pairs": ["-o", pairs_out],
               "dpo": ["--output-dir", dpo_dir]}
    steps = run.get("steps", list(STEPS))
    if isinstance(steps, str):
        steps = [s.strip() for s in steps.split(",") if s.strip()]
    bad = [s for s in steps if s not in STEPS]
    if bad or not steps:
        raise ValueError(f"{config_name} [run]: steps must be among {', '.join(STEPS)}, got {steps!r}")
    from .cli import build_parser

    parsers = subparsers(build_parser())
    out: list[tuple[str, list[str], RewardSettings | None]] = []
    for step in STEPS:
        if step not in steps:
            continue
        args = positional[step]
        if any(a is None for a in args):
            raise ValueError(f"{config_name} [{step}]: {', '.join(POSITIONALS[step])} is required")
        if step == "dpo" and "model" not in tables["dpo"]:
            raise ValueError(f"{config_name} [dpo]: model is required (the SFT model to train: HF id or folder)")
        where = f"{config_name} [{step}]"
        settings, table = score_table(tables[step], where) if step == "score" else (None, tables[step])
        argv = [str(a) for a in args] + outputs[step] + table_argv(parsers[step], table, where)
        out.append((step, argv, settings))
    return out


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers of `lr-train`, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def run_pipeline(config_path: str | Path, steps: list[str] | None = None, keep_going: bool | None = None) -> int:
    """`lr-train run`: each planned step in turn, stopping at the first failure unless keep_going."""
    from .cli import build_parser, err_console

    config = load_config(config_path)
    if steps:
        config.setdefault("run", {})["steps"] = steps
    todo = steps_of(config, str(config_path))
    keep = bool(config.get("run", {}).get("keep_going", False)) if keep_going is None else keep_going
    parser = build_parser()
    worst = 0
    for n, (step, argv, settings) in enumerate(todo, 1):
        shown = argv + (settings.to_argv() if settings else [])
        err_console.print(f"== step {n}/{len(todo)}: lr-train {step} {shlex.join(shown)}", markup=False,
                          highlight=False, style="bold")
        args = parser.parse_args([step, *argv])
        if settings is not None:  # the score step: its settings come from the table, not from flags
            from lr_eval.config import JudgeConfig

            from .score import score_samples

            rc = 1 if score_samples(settings, JudgeConfig.from_args(args), args.input, args.output,
                                    audit=not args.no_audit) else 0
        else:
            rc = int(args.func(args) or 0)
        gc.collect()  # an in-process policy of the sample step must not stay in memory during DPO
        if rc:
            worst = max(worst, rc)
            if not keep:
                err_console.print(f"[bold red]step {step} failed (exit {rc}); fix it and rerun "
                                  f"`lr-train run {config_path}`: finished work is kept")
                return rc
            err_console.print(f"[yellow]step {step} exited {rc}; keep_going: continuing")
    return worst
