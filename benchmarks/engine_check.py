#!/usr/bin/env python
"""The shipped accelerate configs (train/configs/) vs one plain process: same per-step metrics and weights.

Each engine runs `lr-train dpo` on a tiny Llama (float32, 16 pairs, 4 per step, 6 steps, checkpoints
every 2) as a user launches it, `accelerate launch --config_file train/configs/<config>`, on all local
GPUs (``--cpu``: 2 CPU processes, gloo); the plain runs are `python -m lr_eval.train.cli dpo` on one
process. Compared: loss, rewards, log-probs, grad norm per step and the final HF checkpoint (adapter
or full weights), max abs difference <= 1e-4 (6 AdamW steps amplify float32 reduction-order noise).
DeepSpeed ZeRO-3 also resumes: a run SIGKILLed after step 3 is resumed from its step-2 checkpoint and
must end where the uninterrupted one did. A bf16 LoRA run per engine is reported alongside (no target:
the engines keep different masters).
DeepSpeed needs GPUs (accelerate selects it only with them): ``--cpu`` leaves it out.

All launches of a phase run at once (tiny models: the GPU has room). Output: ``<out-dir>/engine_check.json``
and ``.md``; last line ``RESULT engine_max_abs_diff <x> (target <= <tol>)``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "dpo_launch_worker.py"
COMPARED = ("loss", "dpo_loss", "nll_loss", "rewards/chosen", "rewards/rejected", "logps/chosen",
            "logps/rejected", "grad_norm")


def make_data(root: Path) -> None:
    from lr_eval.testing.tiny import save_tiny_model, write_tiny_pairs

    save_tiny_model(root / "model", n_words=64, seed=0)
    write_tiny_pairs(root / "pairs.jsonl", 16, seed=0, prompt_words=(16, 48), response_words=(3, 9))


def dpo_argv(root: Path, out: str, full: bool, dtype: str = "float32") -> list[str]:
    argv = [str(root / "pairs.jsonl"), "--model", str(root / "model"), "-o", str(root / out), "--batch-size", "4",
            "--max-steps", "6", "--save-steps", "2", "--warmup-steps", "1", "--max-length", "48", "--no-console",
            "--dtype", dtype, "--logprob-chunk-size", "4"]
    return argv + (["--full", "--lr", "1e-3"] if full else ["--lr", "5e-3", "--lora-r", "8", "--lora-alpha", "16"])


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(name: str, config: str | None, processes: int, args: list[str], logs: Path) -> subprocess.Popen:
    """``config`` None: one plain process; else `accelerate launch` with that shipped config."""
    if config is None:
        cmd = [sys.executable, *args]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", f"train/configs/{config}",
               "--num_processes", str(processes), "--main_process_port", str(_port()), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = (logs / f"{name}.log").open("w")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_all(procs: dict[str, subprocess.Popen], timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    codes = {}
    for name, proc in procs.items():
        try:
            codes[name] = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes[name] = -9
    return codes


def records(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def weights(out: Path) -> dict:
    from safetensors.torch import load_file

    for name in ("adapter_model.safetensors", "model.safetensors"):
        if (out / "final" / name).is_file():
            return load_file(str(out / "final" / name))
    return {}


def diff(a: Path, b: Path) -> dict:
    """Max abs differences of run ``b`` from run ``a`` (metrics per step, final weights)."""
    ra, rb = records(a), records(b)
    wa, wb = weights(a), weights(b)
    if len(ra) != 6 or len(rb) != 6 or not wa or wa.keys() != wb.keys():
        return {"status": "incomplete", "steps": [len(ra), len(rb)]}
    engine = json.loads((b / "checkpoint-6" / "trainer_state.json").read_text()).get("engine")
    return {
        "status": "ok",
        "engine": engine,
        "metrics": max(abs(x[k] - y[k]) for x, y in zip(ra, rb, strict=True) for k in COMPARED),
        "weights": max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa),
        "final_loss": rb[-1]["loss"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", action="store_true", help="2 CPU processes (FSDP2 only; a smoke test of the script)")
    ap.add_argument("--timeout-s", type=float, default=240.0, help="per phase")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    import torch

    gpus = torch.cuda.device_count()
    if not args.cpu and gpus == 0:
        print("no CUDA device: run with --cpu for the FSDP2 part on 2 CPU processes", file=sys.stderr)
        return 2
    processes = 2 if args.cpu else gpus
    tol = 1e-4
    cli = ["-m", "lr_eval.train.cli", "dpo"]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_data(root)
        logs = root / "logs"
        logs.mkdir()
        # (name, config, full fine-tuning, dtype, reference run)
        checks = [("fsdp2 LoRA", "fsdp2_lora.yaml", False, "float32", "plain-lora"),
                  ("fsdp2 full", "fsdp2_full.yaml", True, "float32", "plain-full"),
                  ("fsdp2 LoRA bf16", "fsdp2_lora.yaml", False, "bfloat16", "plain-lora-bf16")]
        if not args.cpu:
            checks += [("zero3 LoRA", "ds_zero3.yaml", False, "float32", "plain-lora"),
                       ("zero3-offload full", "ds_zero3_offload.yaml", True, "float32", "plain-full"),
                       ("zero3 LoRA bf16", "ds_zero3.yaml", False, "bfloat16", "plain-lora-bf16")]
        procs = {
            "plain-lora": launch("plain-lora", None, 1, cli + dpo_argv(root, "plain-lora", False), logs),
            "plain-full": launch("plain-full", None, 1, cli + dpo_argv(root, "plain-full", True), logs),
            "plain-lora-bf16": launch("plain-lora-bf16", None, 1,
                                      cli + dpo_argv(root, "plain-lora-bf16", False, "bfloat16"), logs),
        }
        for name, config, full, dtype, _ in checks:
            out = name.replace(" ", "-")
            procs[out] = launch(out, config, processes, cli + dpo_argv(root, out, full, dtype), logs)
        if not args.cpu:
            kill = [{"argv": dpo_argv(root, "zero3-resumed", False), "kill_after": 3}]
            procs["zero3-killed"] = launch("zero3-killed", "ds_zero3.yaml", processes,
                                           [str(WORKER), json.dumps(kill)], logs)
        codes = wait_all(procs, args.timeout_s)
        if not args.cpu:
            resumed = {"zero3-resumed": launch("zero3-resumed", "ds_zero3.yaml", processes,
                                               cli + dpo_argv(root, "zero3-resumed", False), logs)}
            codes.update(wait_all(resumed, args.timeout_s))
            checks.append(("zero3 LoRA killed at 3, resumed", None, False, "float32", "zero3-LoRA"))

        rows = []
        for name, _, _, dtype, ref in checks:
            out = "zero3-resumed" if name.startswith("zero3 LoRA killed") else name.replace(" ", "-")
            row = {"check": name, "vs": ref, "dtype": dtype, "exit": codes.get(out), **diff(root / ref, root / out)}
            if row["status"] != "ok":
                row["log_tail"] = (logs / f"{out}.log").read_text()[-1500:]
            row["pass"] = row["status"] == "ok" and (dtype != "float32" or max(row["metrics"], row["weights"]) <= tol)
            rows.append(row)
        failed_refs = {n: (logs / f"{n}.log").read_text()[-1500:] for n in ("plain-lora", "plain-full")
                       if codes.get(n) != 0}

    lines = ["| check | vs | dtype | status | engine | max Δ metrics | max Δ weights | pass |", "|" + "---|" * 8]
    for r in rows:
        m = f"{r['metrics']:.2e}" if "metrics" in r else "—"
        w = f"{r['weights']:.2e}" if "weights" in r else "—"
        lines.append(f"| {r['check']} | {r['vs']} | {r['dtype']} | {r['status']} | {r.get('engine', '—')} | {m} | "
                     f"{w} | {'yes' if r['pass'] else 'NO'} |")
    md = "\n".join(lines)
    print(md)
    for name, tail in failed_refs.items():
        print(f"\n{name} failed:\n{tail}")
    for r in rows:
        if "log_tail" in r:
            print(f"\n{r['check']} log tail:\n{r['log_tail']}")
    device = torch.cuda.get_device_name(0) if not args.cpu else "cpu"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = "engine_check_cpu" if args.cpu else "engine_check"
    meta = {"device": device, "processes": processes, "tolerance": tol, "wall_s": time.perf_counter() - start}
    (args.out_dir / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (args.out_dir / f"{stem}.md").write_text(f"# Engines vs one process ({device}, {processes} processes)\n\n{md}\n")
    fp32 = [max(r["metrics"], r["weights"]) for r in rows if r["dtype"] == "float32" and r["status"] == "ok"]
    complete = len(fp32) == sum(r["dtype"] == "float32" for r in rows)
    worst = max(fp32) if fp32 and complete else float("nan")
    print(f"RESULT engine_max_abs_diff {worst:.3g} (target <= {tol:g})")
    return 0 if all(r["pass"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
