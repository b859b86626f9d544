"""The four `lr-train` steps as functions of typed settings: what `lr-train sample|score|pairs|dpo` and
`lr-train run CONFIG` both call (the command line and the TOML tables are two ways to fill the same
dataclasses). Each returns the command's exit status and prints its summary."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lr_eval.options import option
from lr_eval.progress import console as err_console

from .dpo_config import DPOConfig
from .pairs import PairPolicy
from .sample import PolicyConfig, SampleConfig

# Results go to stdout; wide enough for the tables when piped to a file.
out_console = Console(width=None if sys.stdout.isatty() else 130)


@dataclass(frozen=True)
class ScoreOptions:
    """The score step's own options beside the judge's and the LongReward settings."""

    no_audit: bool = option(False, "leave the audit trail out of the output", switch=True)
    # On the command line these two come with the judge options (lr_eval.config.add_judge_args).
    dry_run: bool = option(False, "estimate calls, tokens and cost; send nothing", switch=True)
    judge_config: str | None = option(None, "TOML file with judge settings", metavar="FILE")


@dataclass(frozen=True)
class PairsOptions:
    """The pairs step's own options beside the pair rules."""

    report: str | None = option(None, "report file (default: beside the output, pairs.report.json)", metavar="JSON")


def sample_step(prompts: str | Path, output: str | Path, policy: PolicyConfig, decoding: SampleConfig) -> int:
    """`lr-train sample`: N responses per prompt, then the summary table; 1 when prompts are left without samples."""
    from lr_eval.report import print_usage

    from .sample import run_sample

    _, stats, meter = run_sample(prompts, output, policy, decoding)
    t = Table(title=f"samples: {stats.prompts} prompts, {stats.responses} responses", show_header=False)
    t.add_row("prompts sampled now / reused from the output", f"{stats.sampled} / {stats.reused}")
    t.add_row("prompt budget (window - max_tokens)",
              "not checked" if stats.max_prompt_tokens is None else f"{stats.max_prompt_tokens:,} tokens")
    t.add_row("prompts truncated (middle of the context cut)", str(stats.truncated))
    t.add_row("prompts too long even without context", str(stats.too_long))
    t.add_row("responses cut at max_tokens", str(stats.cut_at_max_tokens))
    t.add_row("failed samples / prompts without any", f"{stats.failed_samples} / {stats.failed_prompts}")
    if stats.bad_lines:
        t.add_row("bad input lines", str(stats.bad_lines))
    out_console.print(t)
    print_usage(meter, title="policy usage")
    for line in stats.errors[:5]:
        err_console.print(f"[red]{line}")
    if stats.failed_prompts or stats.bad_lines:
        err_console.print(f"[red]{stats.failed_prompts + stats.bad_lines} prompts without samples "
                          f"(see 'error' in {output}); rerun to retry")
        return 1
    return 0


def pairs_step(samples: str | Path, scores: str | Path, output: str | Path, policy: PairPolicy,
               options: PairsOptions) -> int:
    """`lr-train pairs`: the pairs and their report; 1 when no pair is kept."""
    from .pairs import print_report, report_path, run_pairs

    report = run_pairs(samples, scores, output, policy, options.report)
    print_report(report, out_console)
    err_console.print(f"wrote {report.kept} pairs to {output} and the report to "
                      f"{options.report or report_path(output)}")
    if not report.kept:
        err_console.print("[red]no pair kept: nothing to train on")
        return 1
    return 0


def dpo_config_of(values: dict[str, Any], train_file: str) -> DPOConfig:
    """The DPOConfig of the `lr-train dpo` options given (by field name; the others keep DPOConfig's defaults,
    except resume_from: latest unless said, none for a fresh start)."""
    kw = dict(values, train_file=train_file)
    resume = kw.get("resume_from", "latest")
    kw["resume_from"] = None if resume is None or str(resume).lower() == "none" else resume
    targets = kw.get("lora_target_modules")
    if isinstance(targets, str) and targets != "all-linear":
        kw["lora_target_modules"] = [t.strip() for t in targets.split(",") if t.strip()]
    return DPOConfig(**kw)


def dpo_step(config: DPOConfig) -> int:
    """`lr-train dpo`: the training; a checkpoint of other data or batch size says how to start over."""
    from .trainer import run_dpo

    try:
        run_dpo(config)
    except ValueError as e:
        if config.resume_from and ("different data" in str(e) or "batch_size" in str(e)):
            raise ValueError(f"{e}: start over with --resume-from none, or use another --output-dir") from None
        raise
    return 0
