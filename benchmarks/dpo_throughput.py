#!/usr/bin/env python
"""DPO throughput: lr-train (prefix sharing) vs TRL 1.16 DPOTrainer, same model, same pairs, one process.

Setup (specs/dpo.md): a random-init Llama-3.1-8B-shaped model in bf16, LoRA r=16 on all linear
projections, gradient checkpointing, loss sigmoid + 0.1·NLL, β = 0.15, one pair per optimizer step,
prompt P plus two 512-token responses, at P + 512 = 16k, 32k and 64k tokens.  Each (method, length)
runs on a freshly built model with the same seed (identical weights), one warm-up step, then timed
steps.  An out-of-memory is recorded as such (TRL is expected to fail at 64k).

MFU: each method's own model FLOPs (train = 3x forward + the reference forward, LM head on
completion tokens only, causal attention FLOPs, see train/flops.py) over the stated peak
(default 790 TFLOP/s, the bf16 dense matmul rate measured on an H100).  Pairs per hour is the
comparable figure: TRL processes the prompt twice, we once.

Needs torch, transformers, peft, accelerate, TRL + datasets (and this repository).  ``--tiny`` runs
a 2-layer model on short sequences on CPU in seconds (a smoke test of the script itself).

Output: a table on stdout, ``<out-dir>/dpo_throughput[_tiny].json`` and ``.md``, and a last line
``RESULT trl_speedup_at_<L> <x> (target >= 1.8)``: our pairs per hour over TRL's at 32k (in
``--tiny`` mode: at the longest length, and the target is nominal).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESPONSE_LEN = 512
TARGET_SPEEDUP = 1.8
REFERENCE_LENGTH = 32768


def _train_modules():
    """lr_eval.train's modules and the tiny-model builders of lr_eval.testing (the package must be installed)."""
    mods = {n: importlib.import_module(f"lr_eval.train.{n}") for n in ("trainer", "flops", "data")}
    mods["tiny"] = importlib.import_module("lr_eval.testing.tiny")
    return mods


M = _train_modules()


def llama8b_config():
    """Llama-3.1-8B's shape (no weights are downloaded: the model is random-init), with tiny.py's token ids."""
    return M["tiny"].tiny_llama_config(
        128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    )


def build_model(config, device: torch.device, dtype: torch.dtype, seed: int):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, attn_implementation="sdpa", dtype=dtype)
    model.config.use_cache = False
    return model


def lora_config(r: int):
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules="all-linear", bias="none",
                      task_type="CAUSAL_LM")


def random_words(n_pairs: int, prompt_len: int, response_len: int, n_words: int, seed: int):
    """Word indices per pair: prompt (prompt_len - 1: BOS is added), responses (response_len - 1: EOS)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_pairs):
        p = torch.randint(0, n_words, (prompt_len - 1,), generator=g).tolist()
        c = torch.randint(0, n_words, (response_len - 1,), generator=g).tolist()
        r = torch.randint(0, n_words, (response_len - 1,), generator=g).tolist()
        out.append((p, c, r))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def _summary(method: str, length: int, prompt_len: int, times: list[float], peak: float | None,
             flops_per_pair: float, peak_tflops: float, tokens_per_pair: int) -> dict:
    s = sum(times) / len(times)
    return {
        "method": method,
        "length": length,
        "prompt_len": prompt_len,
        "status": "ok",
        "s_per_pair": s,
        "pairs_per_hour": 3600.0 / s,
        "tokens_per_s": tokens_per_pair / s,
        "peak_gib": peak,
        "mfu": M["flops"].mfu(flops_per_pair, s, peak_tflops),
        "step_times_s": times,
    }


def run_ours(args, model_config, device, dtype, words, length: int, attention: str) -> dict:
    trainer_mod, flops = M["trainer"], M["flops"]
    TokenizedPair = M["data"].TokenizedPair
    prompt_len = length - RESPONSE_LEN if not args.tiny else length - args.response_len
    resp = RESPONSE_LEN if not args.tiny else args.response_len
    offset = 4  # word i has id 4 + i (after <pad> <s> </s> <unk>)
    pairs = [
        TokenizedPair([1] + [offset + w for w in p], [offset + w for w in c] + [2], [offset + w for w in r] + [2], i)
        for i, (p, c, r) in enumerate(words)
    ]
    n_steps = args.warmup + args.steps
    with tempfile.TemporaryDirectory() as tmp:
        config = trainer_mod.DPOConfig(
            output_dir=tmp,
            beta=0.15,
            nll_weight=0.1,
            learning_rate=1e-6,
            lr_scheduler="constant",
            warmup_steps=0,
            batch_size=1,
            max_steps=n_steps,
            shuffle=False,
            use_lora=True,
            lora_r=args.lora_r,
            lora_alpha=2 * args.lora_r,
            dtype="bfloat16" if dtype == torch.bfloat16 else "float32",
            attention=attention,
            gradient_checkpointing=True,
            offload_min_tokens=args.offload_min_tokens,
            console=False,
        )
        model = build_model(model_config, device, dtype, args.seed)
        trainer = trainer_mod.DPOTrainer(config, model, None, pairs)
        shape = flops.ModelShape.from_model(trainer.model)
        try:
            records = trainer.train()
        finally:
            trainer.close()
            del trainer, model
    times = [r["step_time_s"] for r in records[args.warmup:]]
    peaks = [r["peak_mem_gib"] for r in records if r["peak_mem_gib"] is not None]
    fl = flops.packed_pair_flops(shape, prompt_len, resp, resp, reference_forward=True)
    tokens = prompt_len + 2 * resp
    name = "lr-train" if attention == "split_sdpa" else f"lr-train ({attention})"
    return _summary(name, length, prompt_len, times, max(peaks) if peaks else None, fl, args.peak_tflops, tokens)


def run_trl(args, model_config, device, dtype, words, length: int) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import DPOConfig as TRLConfig
    from trl import DPOTrainer as TRLTrainer

    flops = M["flops"]
    resp = RESPONSE_LEN if not args.tiny else args.response_len
    prompt_len = length - resp
    rows = [
        {
            "prompt": " ".join(f"w{w}" for w in p),
            "chosen": " " + " ".join(f"w{w}" for w in c),
            "rejected": " " + " ".join(f"w{w}" for w in r),
        }
        for p, c, r in words
    ]
    tokenizer = M["tiny"].word_tokenizer(model_config.vocab_size - 4)
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            _sync(device)
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            _sync(device)
            times.append(time.perf_counter() - self.t)

    with tempfile.TemporaryDirectory() as tmp:
        targs = TRLConfig(
            output_dir=tmp,
            per_device_train_batch_size=1,
            gradient_accumulation_steps=1,
            max_steps=args.warmup + args.steps,
            learning_rate=1e-6,
            beta=0.15,
            loss_type=["sigmoid", "sft"],
            loss_weights=[1.0, 0.1],
            max_length=None,
            bf16=dtype == torch.bfloat16,
            use_cpu=device.type == "cpu",
            gradient_checkpointing=True,
            report_to="none",
            save_strategy="no",
            logging_steps=10**6,
            disable_tqdm=True,
            dataloader_num_workers=0,
            seed=args.seed,
        )
        model = build_model(model_config, device, dtype, args.seed)
        trainer = TRLTrainer(
            model=model,
            args=targs,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=lora_config(args.lora_r),
            callbacks=[Timer()],
        )
        ids = trainer.train_dataset[0]
        assert len(ids["prompt_ids"]) == prompt_len and len(ids["chosen_ids"]) == resp, "token count mismatch"
        shape = flops.ModelShape.from_model(trainer.model)
        _free(device)
        try:
            trainer.train()
        finally:
            trainer.accelerator.free_memory()
            del trainer, model
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    fl = flops.unshared_pair_flops(shape, prompt_len, resp, resp, reference_forward=True, head_all_tokens=False)
    return _summary("TRL 1.16", length, prompt_len, times[args.warmup:], peak, fl, args.peak_tflops,
                    2 * (prompt_len + resp))


def guarded(fn, method: str, length: int, device: torch.device, *a) -> dict:
    _free(device)
    try:
        return fn(*a)
    except Exception as err:  # noqa: BLE001 - one failed configuration must not end the benchmark
        oom = _is_oom(err)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        err_text = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        return {"method": method, "length": length, "status": "out of memory" if oom else "error",
                "error": err_text, "peak_gib": peak}
    finally:
        _free(device)


def fmt(row: dict, key: str, spec: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(value, spec)


def table(rows: list[dict], ratios: dict[tuple[str, int], float]) -> str:
    lines = [
        "| method | length P+R | status | s / pair | pairs / h | tokens/s | peak GiB | MFU | × TRL |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = ratios.get((r["method"], r["length"]))
        lines.append(
            f"| {r['method']} | {r['length']:,} | {r['status']} | {fmt(r, 's_per_pair', '.2f')} | "
            f"{fmt(r, 'pairs_per_hour', ',.0f')} | {fmt(r, 'tokens_per_s', ',.0f')} | {fmt(r, 'peak_gib', '.1f')} | "
            f"{fmt(r, 'mfu', '.1%')} | {'—' if ratio is None else f'{ratio:.2f}'} |"
        )
    return "\n".join(lines)


def write_results(args, rows: list[dict], device: torch.device, start: float, done: bool):
    """Ratios vs TRL, the table, and ``<out-dir>/dpo_throughput[_tiny].json`` / ``.md`` (rows so far)."""
    import transformers
    import trl as trl_pkg

    trl = {r["length"]: r for r in rows if r["method"] == "TRL 1.16" and r["status"] == "ok"}
    ratios = {
        (r["method"], r["length"]): r["pairs_per_hour"] / trl[r["length"]]["pairs_per_hour"]
        for r in rows
        if r["method"].startswith("lr-train") and r["status"] == "ok" and r["length"] in trl
    }
    md = table(rows, ratios)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    meta = {
        "device": device_name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl_pkg.__version__,
        "tiny": args.tiny,
        "complete": done,
        "response_len": args.response_len if args.tiny else RESPONSE_LEN,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "peak_tflops": args.peak_tflops,
        "mfu_convention": "own model FLOPs: 3x forward (train) + reference forward; LM head on completion "
        "tokens; causal attention 4*L*d per attended pair; checkpoint recompute not counted",
        "wall_s": time.perf_counter() - start,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = "dpo_throughput_tiny" if args.tiny else "dpo_throughput"
    (args.out_dir / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "ratios": {f"{m}@{n}": v for (m, n), v in ratios.items()}},
                   indent=2) + "\n"
    )
    (args.out_dir / f"{stem}.md").write_text(f"# DPO throughput ({device_name})\n\n{md}\n")
    return md, ratios, device_name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="2-layer model, short sequences, CPU OK (smoke test)")
    ap.add_argument("--lengths", type=int, nargs="+", help="P + response lengths (default 16k 32k 64k)")
    ap.add_argument("--response-len", type=int, default=16, help="response length in --tiny mode")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2, help="timed steps (pairs) per configuration")
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--attention", nargs="+", default=["split_sdpa"], help="our attention variants to run")
    ap.add_argument("--offload-min-tokens", type=int, default=None, help="offload checkpoints from this length")
    ap.add_argument("--skip-trl", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=M["flops"].DEFAULT_PEAK_TFLOPS)
    ap.add_argument("--time-budget-s", type=float, default=540.0, help="skip configurations after this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)

    start = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    if args.tiny:
        lengths = args.lengths or [64, 96]
        model_config = M["tiny"].tiny_llama_config(vocab_size=4 + 60)
        dtype = torch.float32
    else:
        if device.type != "cuda":
            print("no CUDA device: run with --tiny for a CPU smoke test", file=sys.stderr)
            return 2
        lengths = args.lengths or [16384, 32768, 65536]
        model_config = llama8b_config()
        dtype = torch.bfloat16
    resp = args.response_len if args.tiny else RESPONSE_LEN
    n_words = model_config.vocab_size - 4
    n_pairs = args.warmup + args.steps

    rows: list[dict] = []
    for length in lengths:
        words = random_words(n_pairs, length - resp, resp, n_words, args.seed + length)
        plan = [(f"lr-train ({a})" if a != "split_sdpa" else "lr-train", run_ours,
                 (args, model_config, device, dtype, words, length, a)) for a in args.attention]
        if not args.skip_trl:
            plan.append(("TRL 1.16", run_trl, (args, model_config, device, dtype, words, length)))
        for method, fn, fn_args in plan:
            if time.perf_counter() - start > args.time_budget_s:
                rows.append({"method": method, "length": length, "status": "skipped (time budget)"})
                continue
            row = guarded(fn, method, length, device, *fn_args)
            rows.append(row)
            write_results(args, rows, device, start, done=False)  # a run cut short keeps what it measured
            print(f"[{time.perf_counter() - start:6.1f}s] {method} @ {length}: {row['status']} "
                  f"{fmt(row, 's_per_pair', '.2f')} s/pair, peak {fmt(row, 'peak_gib', '.1f')} GiB", flush=True)

    md, ratios, device_name = write_results(args, rows, device, start, done=True)
    import trl as trl_pkg

    print(f"\n{device_name}, torch {torch.__version__}, TRL {trl_pkg.__version__}, "
          f"MFU peak {args.peak_tflops:g} TFLOP/s\n")
    print(md)

    ref_len = max(lengths) if args.tiny else REFERENCE_LENGTH
    ratio = ratios.get(("lr-train", ref_len))
    if ratio is not None:
        print(f"RESULT trl_speedup_at_{ref_len} {ratio:.3f} (target >= {TARGET_SPEEDUP})")
    else:
        ours = next((r for r in rows if r["method"] == "lr-train" and r["length"] == ref_len), None)
        if ours is not None and ours.get("status") == "ok":
            print(f"RESULT seconds_per_pair_at_{ref_len} {ours['s_per_pair']:.3f} (target <= 9.2)")
        else:
            print(f"RESULT trl_speedup_at_{ref_len} nan (target >= {TARGET_SPEEDUP})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
