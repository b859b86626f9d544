"""`lr-train`: LongReward preference data and DPO training.

  lr-train sample PROMPTS.jsonl -o samples.jsonl --model NAME --base-url URL   N responses per prompt
  lr-train score samples.jsonl -o scores.jsonl --model JUDGE --base-url URL     LongReward on every group
  lr-train pairs samples.jsonl scores.jsonl -o pairs.jsonl                      chosen / rejected + report
  lr-train dpo pairs.jsonl --model SFT_MODEL --output-dir runs/dpo              DPO + NLL (LoRA by default)
  lr-train run CONFIG.toml                                                      the four steps, chained

Every step is resumable: rerun the same command to continue where it stopped.
"""

from __future__ import annotations

import argparse
import sys

from lr_eval.options import add_options, from_args

from .dpo_config import DPOConfig
from .pairs import PairPolicy
from .sample import PolicyConfig, SampleConfig
from .steps import PairsOptions, ScoreOptions, dpo_config_of, dpo_step, out_console, pairs_step, sample_step

# The options of each command are the option fields of its settings classes (lr_eval.options): one flag per
# field, its help and default written once, on the field; `lr-train run` fills the same classes from TOML.


def _add_sample(sub: argparse._SubParsersAction) -> None:
    from .sample import __doc__ as doc

    p = sub.add_parser("sample", help="N responses per long-context prompt from the policy (resumable)",
                       description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="PROMPTS", help='JSONL: {"id", "context", "question"} (or idx / query)')
    p.add_argument("-o", "--output", required=True, help="samples JSONL (also a valid `lr-eval score` input)")
    add_options(p.add_argument_group("policy"), PolicyConfig, required=("model",))
    add_options(p.add_argument_group("decoding (the paper: 10 samples at temperature 1.0)"), SampleConfig)
    p.set_defaults(func=lambda a: sample_step(a.input, a.output, PolicyConfig(**from_args(PolicyConfig, a)),
                                              SampleConfig(**from_args(SampleConfig, a))))


def _add_score(sub: argparse._SubParsersAction) -> None:
    from lr_eval.config import add_judge_args
    from lr_eval.reward.settings import add_reward_args

    from .score import __doc__ as doc

    p = sub.add_parser("score", help="LongReward scores of every sampled response (resumable)",
                       description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="SAMPLES", help="the samples JSONL of `lr-train sample`")
    p.add_argument("-o", "--output", required=True, help='JSONL: {"id", "responses_sha", "judge", "results": [...]}')
    add_options(p, ScoreOptions, skip=("dry_run", "judge_config"))
    add_reward_args(p)
    add_judge_args(p)
    p.set_defaults(func=_score)


def _score(a: argparse.Namespace) -> int:
    from lr_eval.config import JudgeConfig
    from lr_eval.reward.settings import RewardConfig

    from .score import score_samples

    return 1 if score_samples(RewardConfig.from_args(a), JudgeConfig.from_args(a), a.input, a.output,
                              audit=not a.no_audit) else 0


def _add_pairs(sub: argparse._SubParsersAction) -> None:
    from .pairs import __doc__ as doc

    p = sub.add_parser("pairs", help="chosen = highest reward, rejected = lowest; report of kept/dropped prompts",
                       description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("samples", metavar="SAMPLES", help="the samples JSONL of `lr-train sample`")
    p.add_argument("scores", metavar="SCORES", help="the scores JSONL of `lr-train score` (or `lr-eval score`)")
    p.add_argument("-o", "--output", required=True, help="preference pairs JSONL (the input of `lr-train dpo`)")
    add_options(p, PairsOptions)
    add_options(p, PairPolicy)
    p.set_defaults(func=lambda a: pairs_step(a.samples, a.scores, a.output, PairPolicy(**from_args(PairPolicy, a)),
                                             PairsOptions(**from_args(PairsOptions, a))))


def _add_dpo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dpo", help="DPO + NLL on the chosen response (LoRA by default; resumes)",
                       description="DPO with an NLL term on the chosen response, L = L_DPO + λ·NLL(chosen), "
                                   "prompt shared by the two responses in one packed sequence. Defaults as the "
                                   "paper: β 0.15, λ 0.1, learning rate 1e-6, 16 pairs per step, one epoch, "
                                   "max length 65536; LoRA r=16 on all linear layers. Writes HF-format "
                                   "checkpoints (OUTPUT_DIR/checkpoint-N, final/) and metrics.jsonl; resumes "
                                   "from the latest checkpoint of OUTPUT_DIR.")
    p.add_argument("train_file", metavar="PAIRS", help="preference JSONL (prompt | context + question, chosen, "
                   "rejected; LongReward-10k's query / win_response / lose_response too)")
    g = p.add_argument_group("DPO (options not given keep the defaults shown)")
    add_options(g, DPOConfig, suppress=True, required=("model",))
    g.add_argument("--full", dest="use_lora", action="store_false", default=argparse.SUPPRESS,
                   help="full fine-tuning (same as --no-use-lora; fp32 master weights, precomputed reference)")
    p.set_defaults(func=lambda a: dpo_step(dpo_config(a)))


def dpo_config(a: argparse.Namespace) -> DPOConfig:
    """The DPOConfig of `lr-train dpo` options (options not given keep DPOConfig's defaults)."""
    return dpo_config_of(from_args(DPOConfig, a), a.train_file)


# ---------------------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------------------

def _add_run(sub: argparse._SubParsersAction) -> None:
    from .pipeline import __doc__ as doc

    p = sub.add_parser("run", help="sample → score → pairs → dpo from one TOML config (resumable)",
                       description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG", help="TOML: [run] workdir, then [sample] [score] [pairs] [dpo]")
    p.add_argument("--steps", metavar="LIST", help="comma-separated subset of sample,score,pairs,dpo")
    p.add_argument("--keep-going", action="store_true", default=None, help="continue after a failed step")
    p.add_argument("--plan", action="store_true", help="print the commands of each step and run nothing")
    p.set_defaults(func=_run)


def _run(a: argparse.Namespace) -> int:
    import shlex

    from .pipeline import load_config, plan, run_pipeline

    steps = [s.strip() for s in a.steps.split(",") if s.strip()] if a.steps else None
    if a.plan:
        config = load_config(a.config)
        if steps:
            config.setdefault("run", {})["steps"] = steps
        for step, argv in plan(config, a.config):
            out_console.print(f"lr-train {step} {shlex.join(argv)}", markup=False, highlight=False)
        return 0
    return run_pipeline(a.config, steps, a.keep_going)


# ---------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lr-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_sample(sub)
    _add_score(sub)
    _add_pairs(sub)
    _add_dpo(sub)
    _add_run(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from lr_eval.errors import UserError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        if args.verbose:
            raise
        print(f"lr-train {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except (ValueError, FileNotFoundError) as e:
        if args.verbose:
            raise
        # Bad input or configuration: one clear line, not a traceback.
        print(f"lr-train {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept (outputs and caches): rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
