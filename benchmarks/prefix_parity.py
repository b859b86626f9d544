#!/usr/bin/env python
"""Prefix sharing on the GPU: the packed pair's DPO loss, log-probs and LoRA gradients vs two separate sequences.

The CPU tests prove the packed computation exact in float32 (tests/test_dpo_packing.py). On a GPU the
split-SDPA path runs flash attention in bf16, so the two computations round differently; this checks
that the difference stays at bf16 noise: one pair (prompt P, responses C and R), a random-init Llama
(8 layers, hidden 2048) with a non-zero LoRA adapter, reference = the adapter disabled.

* unshared: one full causal forward per response (transformers' SDPA), full logits, log-softmax;
* shared: ``PackedPairModel`` (split SDPA, chunked log-probs), the trainer's code.

Tolerances (bf16; stated before running): |Δ loss| <= 1e-2, |Δ summed log-prob| / |summed log-prob|
<= 1e-2 for each response, gradient cosine >= 0.99 and relative gradient norm difference <= 5e-2.
The float32 run of the same pair (also on the GPU) must agree to 1e-4 (loss) and 1e-3 (cosine gap).
``--tiny`` runs a 2-layer model in float32 on the CPU (a smoke test of this script).

Output: ``<out-dir>/prefix_parity[_tiny].json`` and a last line ``RESULT prefix_parity_bf16_loss_diff <x>
(target <= 0.01)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from lr_eval.testing import tiny
from lr_eval.train import loss, modeling, packing

ROOT = Path(__file__).resolve().parents[1]
BETA, LAM = 0.15, 0.1
BF16_TOL = {"loss": 1e-2, "logp_rel": 1e-2, "grad_cos_gap": 1e-2, "grad_norm_rel": 5e-2}
FP32_TOL = {"loss": 1e-4, "logp_rel": 1e-4, "grad_cos_gap": 1e-3, "grad_norm_rel": 1e-3}


def unshared_logps(model, prompt: torch.Tensor, completion: torch.Tensor) -> torch.Tensor:
    ids = torch.cat([prompt, completion])[None]
    logits = model(input_ids=ids).logits[0].float()
    p = prompt.numel()
    return logits[p - 1 : -1].log_softmax(-1).gather(-1, completion[:, None]).squeeze(-1)


def lora_grads(model) -> torch.Tensor:
    return torch.cat([p.grad.float().flatten() for n, p in model.named_parameters() if p.grad is not None])


def run(model, prompt, chosen, rejected, shared: bool) -> dict:
    """Token log-probs, loss and LoRA gradient of one pair, shared or unshared."""
    model.zero_grad(set_to_none=True)
    if shared:
        packed = modeling.PackedPairModel(model, attention="split_sdpa", logprob_chunk_size=1024)
        pair = packing.pack_pair(prompt.tolist(), chosen.tolist(), rejected.tolist())
        ref_c, ref_r = (t.sum() for t in packed(pair, reference=True))
        c, r = packed(pair)
        packed.restore_attention()
    else:
        with torch.no_grad(), model.disable_adapter():
            ref_c = unshared_logps(model, prompt, chosen).sum()
            ref_r = unshared_logps(model, prompt, rejected).sum()
        c, r = unshared_logps(model, prompt, chosen), unshared_logps(model, prompt, rejected)
    out = loss.pair_loss(c, r, ref_c, ref_r, BETA, LAM)
    out.loss.backward()
    return {"chosen": c.detach().sum().item(), "rejected": r.detach().sum().item(), "loss": out.loss.item(),
            "grad": lora_grads(model)}


def compare(a: dict, b: dict) -> dict:
    cos = torch.nn.functional.cosine_similarity(a["grad"], b["grad"], dim=0).item()
    return {
        "loss": abs(a["loss"] - b["loss"]),
        "logp_rel": max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in ("chosen", "rejected")),
        "grad_cos_gap": 1.0 - cos,
        "grad_norm_rel": abs(a["grad"].norm().item() - b["grad"].norm().item()) / b["grad"].norm().item(),
        "loss_shared": a["loss"],
        "loss_unshared": b["loss"],
    }


def build(args, device: torch.device, dtype: torch.dtype):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    if args.tiny:
        config = tiny.tiny_llama_config(96)
    else:
        config = tiny.tiny_llama_config(32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=8,
                                             num_attention_heads=16, num_key_value_heads=8,
                                             max_position_embeddings=65536)
    torch.manual_seed(args.seed)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, attn_implementation="sdpa", dtype=dtype)
    model.config.use_cache = False
    torch.manual_seed(args.seed + 1)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(model, lora), config.vocab_size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="2-layer model, float32, CPU (smoke test)")
    ap.add_argument("--prompt-len", type=int, default=None, help="default 8192 (tiny: 40)")
    ap.add_argument("--response-len", type=int, default=None, help="default 512 (tiny: 12)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    if device.type != "cuda" and not args.tiny:
        print("no CUDA device: run with --tiny for a CPU smoke test", file=sys.stderr)
        return 2
    p_len = args.prompt_len or (40 if args.tiny else 8192)
    r_len = args.response_len or (12 if args.tiny else 512)
    dtypes = [torch.float32] if args.tiny else [torch.bfloat16, torch.float32]

    results = {}
    for dtype in dtypes:
        model, vocab = build(args, device, dtype)
        g = torch.Generator().manual_seed(args.seed)
        prompt, chosen, rejected = (torch.randint(4, vocab, (n,), generator=g).to(device)
                                    for n in (p_len, r_len, r_len + 7))
        shared = run(model, prompt, chosen, rejected, shared=True)
        unshared = run(model, prompt, chosen, rejected, shared=False)
        name = str(dtype).removeprefix("torch.")
        tol = BF16_TOL if dtype == torch.bfloat16 else FP32_TOL
        diff = compare(shared, unshared)
        diff["ok"] = all(diff[k] <= tol[k] for k in tol)
        diff["tolerance"] = tol
        results[name] = diff
        print(f"{name}: " + ", ".join(f"{k} {v:.3g}" for k, v in diff.items() if isinstance(v, float))
              + f"  -> {'ok' if diff['ok'] else 'FAIL'}", flush=True)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = "prefix_parity_tiny" if args.tiny else "prefix_parity"
    meta = {"device": device_name, "torch": torch.__version__, "prompt_len": p_len, "response_len": r_len}
    (args.out_dir / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    key = "float32" if args.tiny else "bfloat16"
    target = (FP32_TOL if args.tiny else BF16_TOL)["loss"]
    print(f"RESULT prefix_parity_{'fp32' if args.tiny else 'bf16'}_loss_diff {results[key]['loss']:.3g} "
          f"(target <= {target:g})")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
