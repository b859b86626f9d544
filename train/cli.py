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
from typing import Any

from rich.console import Console
from rich.table import Table

from lr_eval.progress import console as err_console

# Results go to stdout; wide enough for the tables when piped to a file.
out_console = Console(width=None if sys.stdout.isatty() else 130)

# DPOConfig fields set through `lr-train dpo` options (train_file is the positional PAIRS).
# Options default to argparse.SUPPRESS: a value not given comes from DPOConfig itself.
DPO_FIELDS = (
    "model", "output_dir", "tokenizer", "prompt_format", "max_length", "beta", "nll_weight", "learning_rate",
    "lr_scheduler", "warmup_ratio", "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
    "max_grad_norm", "batch_size", "num_epochs", "max_steps", "shuffle", "seed", "use_lora", "lora_r",
    "lora_alpha", "lora_dropout", "lora_target_modules", "reference", "dtype", "attention",
    "gradient_checkpointing", "offload_min_tokens", "logprob_chunk_size", "logging_steps", "console",
    "save_steps", "save_total_limit", "save_merged", "resume_from", "peak_tflops",
)
_ZERO_IS_NONE = ("max_length", "max_grad_norm", "save_steps", "save_total_limit", "offload_min_tokens",
                 "warmup_steps", "max_steps")


# ---------------------------------------------------------------------------------------------------------
# sample
# ---------------------------------------------------------------------------------------------------------

def _add_sample(sub: argparse._SubParsersAction) -> None:
    from .sample import __doc__ as doc

    p = sub.add_parser("sample", help="N responses per long-context prompt from the policy (resumable)",
                       description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="PROMPTS", help='JSONL: {"id", "context", "question"} (or idx / query)')
    p.add_argument("-o", "--output", required=True, help="samples JSONL (also a valid `lr-eval score` input)")
    g = p.add_argument_group("policy")
    g.add_argument("--model", required=True, help="served model name, or a local path with --backend transformers")
    g.add_argument("--backend", choices=("openai", "transformers"), default="openai",
                   help="openai: any OpenAI-compatible endpoint, e.g. `vllm serve` (default); "
                        "transformers: in-process, one request at a time (small runs)")
    g.add_argument("--base-url", metavar="URL", help="e.g. http://localhost:8000/v1")
    g.add_argument("--api-key-env", default="LR_POLICY_API_KEY", metavar="VAR",
                   help="variable holding the endpoint's key (default %(default)s, then OPENAI_API_KEY)")
    g.add_argument("--tokenizer", metavar="NAME", help="the policy's tokenizer, to count and cut prompts "
                   "(default: the model, in-process)")
    g.add_argument("--max-model-len", type=int, metavar="TOKENS",
                   help="the policy's window (prompt + new tokens, as vLLM's flag); longer prompts lose the "
                        "middle of their context. Default: in-process, the model's max_position_embeddings; "
                        "endpoint, what `vllm serve` reports on /models (else not checked); 0: never check")
    g.add_argument("--concurrency", type=int, default=16, metavar="N", help="requests in flight (default %(default)s)")
    g.add_argument("--prompts-in-flight", type=int, default=64, metavar="N",
                   help="prompts prepared at the same time (default %(default)s)")
    g.add_argument("--timeout", type=float, default=600.0, metavar="S", help="per request (default %(default)s)")
    g.add_argument("--max-retries", type=int, default=6, metavar="N")
    g.add_argument("--cache", metavar="PATH", help="SQLite cache of the samples, or 'none' "
                   "(default: beside the output, samples.cache.sqlite)")
    d = p.add_argument_group("decoding (the paper: 10 samples at temperature 1.0)")
    d.add_argument("-n", "--n", type=int, default=10, metavar="N", help="samples per prompt (default %(default)s)")
    d.add_argument("--temperature", type=float, default=1.0)
    d.add_argument("--top-p", type=float)
    d.add_argument("--max-tokens", type=int, default=1024, metavar="N", help="new tokens (default %(default)s)")
    d.add_argument("--seed", type=int, default=0, help="sample i uses seed + i (default %(default)s)")
    p.set_defaults(func=_sample)


def _sample(a: argparse.Namespace) -> int:
    from lr_eval.report import print_usage

    from .sample import PolicyConfig, SampleConfig, run_sample

    pc = PolicyConfig(model=a.model, backend=a.backend, base_url=a.base_url, api_key_env=a.api_key_env,
                      tokenizer=a.tokenizer, max_model_len=a.max_model_len, concurrency=a.concurrency,
                      timeout=a.timeout, max_retries=a.max_retries, cache=a.cache)
    cfg = SampleConfig(n=a.n, temperature=a.temperature, top_p=a.top_p, max_tokens=a.max_tokens, seed=a.seed,
                       prompts_in_flight=a.prompts_in_flight)
    _, stats, meter = run_sample(a.input, a.output, pc, cfg)
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
                          f"(see 'error' in {a.output}); rerun to retry")
        return 1
    return 0


# ---------------------------------------------------------------------------------------------------------
# score, pairs
# ---------------------------------------------------------------------------------------------------------

def _add_score(sub: argparse._SubParsersAction) -> None:
    from lr_eval.config import add_judge_args
    from lr_eval.reward.settings import add_reward_args

    from .score import __doc__ as doc

    p = sub.add_parser("score", help="LongReward scores of every sampled response (resumable)",
                       description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="SAMPLES", help="the samples JSONL of `lr-train sample`")
    p.add_argument("-o", "--output", required=True, help='JSONL: {"id", "responses_sha", "judge", "results": [...]}')
    p.add_argument("--no-audit", action="store_true", help="leave the audit trail out of the output")
    add_reward_args(p)
    add_judge_args(p)
    p.set_defaults(func=lambda a: 1 if _score(a) else 0)


def _score(a: argparse.Namespace) -> int:
    from lr_eval.config import JudgeConfig
    from lr_eval.reward.settings import RewardSettings

    from .score import score_samples

    return score_samples(RewardSettings.from_args(a), JudgeConfig.from_args(a), a.input, a.output,
                         audit=not a.no_audit)


def _add_pairs(sub: argparse._SubParsersAction) -> None:
    from .pairs import TIE_RULES
    from .pairs import __doc__ as doc

    p = sub.add_parser("pairs", help="chosen = highest reward, rejected = lowest; report of kept/dropped prompts",
                       description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("samples", metavar="SAMPLES", help="the samples JSONL of `lr-train sample`")
    p.add_argument("scores", metavar="SCORES", help="the scores JSONL of `lr-train score` (or `lr-eval score`)")
    p.add_argument("-o", "--output", required=True, help="preference pairs JSONL (the input of `lr-train dpo`)")
    p.add_argument("--report", metavar="JSON", help="report file (default: beside the output, pairs.report.json)")
    p.add_argument("--min-margin", type=float, default=0.0, metavar="X",
                   help="least reward difference chosen - rejected (default 0: any strict difference)")
    p.add_argument("--min-scored", type=int, default=5, metavar="N",
                   help="least scored, non-blank responses per prompt (default %(default)s, as the reference)")
    p.add_argument("--ties", choices=TIE_RULES, default="first",
                   help="several responses share the best (or worst) reward: first = lowest sample index "
                        "(default), shortest = shortest best / longest worst, drop = drop the prompt")
    p.add_argument("--exclude-cut", action="store_true", help="leave out responses that hit max_tokens")
    p.add_argument("--allow-partial-rewards", action="store_true",
                   help="accept rewards that average fewer than every enabled dimension (still compared only with "
                        "rewards over the same set); default: such responses are left out (partial_reward)")
    p.set_defaults(func=_pairs)


def _pairs(a: argparse.Namespace) -> int:
    from .pairs import PairPolicy, print_report, report_path, run_pairs

    policy = PairPolicy(min_margin=a.min_margin, min_scored=a.min_scored, ties=a.ties, exclude_cut=a.exclude_cut,
                        allow_partial_rewards=a.allow_partial_rewards)
    report = run_pairs(a.samples, a.scores, a.output, policy, a.report)
    print_report(report, out_console)
    err_console.print(f"wrote {report.kept} pairs to {a.output} and the report to {a.report or report_path(a.output)}")
    if not report.kept:
        err_console.print("[red]no pair kept: nothing to train on")
        return 1
    return 0


# ---------------------------------------------------------------------------------------------------------
# dpo
# ---------------------------------------------------------------------------------------------------------

def _add_dpo(sub: argparse._SubParsersAction) -> None:
    S = argparse.SUPPRESS
    p = sub.add_parser("dpo", help="DPO + NLL on the chosen response (LoRA by default; resumes)",
                       description="DPO with an NLL term on the chosen response, L = L_DPO + λ·NLL(chosen), "
                                   "prompt shared by the two responses in one packed sequence. Defaults as the "
                                   "paper: β 0.15, λ 0.1, learning rate 1e-6, 16 pairs per step, one epoch, "
                                   "max length 65536; LoRA r=16 on all linear layers. Writes HF-format "
                                   "checkpoints (OUTPUT_DIR/checkpoint-N, final/) and metrics.jsonl; resumes "
                                   "from the latest checkpoint of OUTPUT_DIR.",
                       argument_default=S)
    p.add_argument("train_file", metavar="PAIRS", help="preference JSONL (prompt | context + question, chosen, "
                   "rejected; LongReward-10k's query / win_response / lose_response too)")
    p.add_argument("--model", required=True, help="the SFT model: HF id or folder")
    p.add_argument("-o", "--output-dir", help="checkpoints, final model, metrics (default runs/dpo)")
    p.add_argument("--tokenizer", help="default: the model's")
    p.add_argument("--prompt-format", choices=("auto", "chat", "raw"),
                   help="auto: the chat template when the tokenizer has one")
    p.add_argument("--max-length", type=int, metavar="TOKENS",
                   help="per sequence prompt + response; prompts are cut in the middle (default 65536; 0: none)")
    m = p.add_argument_group("objective and optimizer")
    m.add_argument("--beta", type=float, help="DPO β (default 0.15)")
    m.add_argument("--nll-weight", "--lambda", dest="nll_weight", type=float, help="λ of the NLL term (default 0.1)")
    m.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float, help="default 1e-6 (the paper's "
                   "full fine-tuning rate; LoRA usually wants more)")
    m.add_argument("--lr-scheduler", choices=("constant", "linear", "cosine"), help="after warmup (default cosine)")
    m.add_argument("--warmup-ratio", type=float, help="default 0.05")
    m.add_argument("--warmup-steps", type=int, help="overrides --warmup-ratio")
    m.add_argument("--weight-decay", type=float)
    m.add_argument("--adam-beta1", type=float)
    m.add_argument("--adam-beta2", type=float)
    m.add_argument("--adam-epsilon", type=float)
    m.add_argument("--max-grad-norm", type=float, help="default 1.0; 0: no clipping")
    m.add_argument("--batch-size", type=int, help="pairs per optimizer step, all processes (default 16)")
    m.add_argument("--num-epochs", "--epochs", dest="num_epochs", type=float, help="default 1")
    m.add_argument("--max-steps", type=int, help="overrides --num-epochs")
    m.add_argument("--shuffle", action=argparse.BooleanOptionalAction, help="default on")
    m.add_argument("--seed", type=int, help="default 42")
    lo = p.add_argument_group("LoRA or full fine-tuning")
    lo.add_argument("--use-lora", action=argparse.BooleanOptionalAction, help="default on")
    lo.add_argument("--full", dest="use_lora", action="store_false",
                    help="full fine-tuning (same as --no-use-lora; fp32 master weights, precomputed reference)")
    lo.add_argument("--lora-r", type=int, help="default 16")
    lo.add_argument("--lora-alpha", type=int, help="default 32")
    lo.add_argument("--lora-dropout", type=float)
    lo.add_argument("--lora-target-modules", metavar="NAMES", help="comma-separated, or all-linear (default)")
    lo.add_argument("--reference", choices=("auto", "online", "precompute"),
                    help="reference log-probs: online (adapter disabled) or precomputed (default auto)")
    e = p.add_argument_group("engine")
    e.add_argument("--dtype", choices=("auto", "bfloat16", "float32"), help="auto: bf16 on CUDA, fp32 on CPU")
    e.add_argument("--attention", help="split_sdpa (default), dense_mask or flex (CUDA)")
    e.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, help="default on")
    e.add_argument("--offload-min-tokens", type=int, help="offload activation checkpoints of pairs this long")
    e.add_argument("--logprob-chunk-size", type=int, help="LM head + log-softmax in chunks of N tokens")
    e.add_argument("--peak-tflops", type=float, help="the accelerator's peak, for MFU")
    c = p.add_argument_group("logging and checkpoints")
    c.add_argument("--logging-steps", type=int, help="console every N steps (metrics.jsonl gets every step)")
    c.add_argument("--console", action=argparse.BooleanOptionalAction, help="print progress (default on)")
    c.add_argument("--save-steps", type=int, help="checkpoint every N steps (default: only at the end)")
    c.add_argument("--save-total-limit", type=int, help="checkpoints kept (default 2; 0: all)")
    c.add_argument("--save-merged", action=argparse.BooleanOptionalAction,
                   help="also write the LoRA-merged model to OUTPUT_DIR/merged")
    c.add_argument("--resume-from", metavar="PATH|latest|none",
                   help="checkpoint to resume from (default latest: the newest in OUTPUT_DIR, if any)")
    p.set_defaults(func=_dpo)


def dpo_config(a: argparse.Namespace) -> Any:
    """The DPOConfig of `lr-train dpo` options (options not given keep DPOConfig's defaults)."""
    from .trainer import DPOConfig

    kw: dict[str, Any] = {f: getattr(a, f) for f in DPO_FIELDS if hasattr(a, f)}
    kw["train_file"] = a.train_file
    for name in _ZERO_IS_NONE:
        if kw.get(name) == 0:
            kw[name] = None
    resume = kw.get("resume_from", "latest")
    kw["resume_from"] = None if str(resume).lower() == "none" else resume
    targets = kw.get("lora_target_modules")
    if isinstance(targets, str) and targets != "all-linear":
        kw["lora_target_modules"] = [t.strip() for t in targets.split(",") if t.strip()]
    return DPOConfig(**kw)


def _dpo(a: argparse.Namespace) -> int:
    from .trainer import run_dpo

    config = dpo_config(a)
    try:
        run_dpo(config)
    except ValueError as e:
        if config.resume_from and ("different data" in str(e) or "batch_size" in str(e)):
            raise ValueError(f"{e}: start over with --resume-from none, or use another --output-dir") from None
        raise
    return 0


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
