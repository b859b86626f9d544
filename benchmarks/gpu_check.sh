#!/usr/bin/env bash
# The GPU check of lr-train in one call, within 10 minutes on one H100 / H200 (run from anywhere):
#   bash benchmarks/gpu_check.sh            (GPU_CHECK_BUDGET_S=570 by default)
#   bash benchmarks/gpu_check.sh --tiny     (the same steps on the CPU in tiny modes: a test of this script)
#
# 1. install: the wheels in .whl/ (`bash benchmarks/gpu_wheels.sh` fills it, on a machine with PyPI, for a
#    GPU machine without internet) into a private folder, plus this project from its source (no deps);
#    without .whl/, from PyPI: this project's [train] extra, TRL 1.16, datasets and DeepSpeed.
# 2. benchmarks/prefix_parity.py: prefix-shared vs unshared loss, log-probs and gradients in bf16 (tolerances
#    in its docstring: |Δ loss| <= 1e-2, gradient cosine >= 0.99), and in float32 on the GPU.
# 3. benchmarks/engine_check.py: the shipped FSDP2 and DeepSpeed ZeRO-3 configs vs one process (float32,
#    max abs diff <= 1e-4), DeepSpeed killed and resumed: the DeepSpeed check the CPU cannot run.
# 4. benchmarks/dpo_throughput.py: lr-train vs TRL at 32k, 64k, 16k tokens (8B-shaped Llama, LoRA, bf16) in
#    the time left; targets >= 1.8x TRL's pairs per hour at 32k, 64k within 80 GiB.
# Results: benchmarks/results/<card>/ (card = the GPU's name) and, when $OUT is set, $OUT/ (flat, <= 8 files).
# Every step runs even when one before it failed; the exit status is 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
BUDGET=${GPU_CHECK_BUDGET_S:-570}
TINY=${1:-}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

if [ "$TINY" = "--tiny" ]; then
    card=cpu-tiny
else
    card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr 'A-Z' 'a-z' |
           sed -E 's/[^a-z0-9]+/-/g; s/^-|-$//g')
    card=${card:-unknown-gpu}
fi
RES=benchmarks/results/$card
mkdir -p "$RES"
LOG=$RES/gpu_check.log
: >"$LOG"
FAILED=()

step() {  # step NAME COMMAND...: run, log, time; record a failure and go on
    local name=$1
    shift
    echo "== [$((SECONDS - START))s] $name: $*" | tee -a "$LOG"
    "$@" 2>&1 | grep -v -E "Warning|warnings.warn|it/s\]" | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    echo "== [$((SECONDS - START))s] $name exit $rc" | tee -a "$LOG"
    [ "$rc" = 0 ] || FAILED+=("$name")
}

install() {
    if [ "$TINY" = "--tiny" ]; then
        echo "tiny mode: using the installed environment"
    elif ls .whl/*.whl >/dev/null 2>&1; then
        local site=/tmp/lr-site
        $PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$site" .whl/*.whl || return 1
        PYTHONPATH=$site $PY -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
            --target "$site/project" . || return 1
        export PYTHONPATH=$site/project:$site${PYTHONPATH:+:$PYTHONPATH}
    else
        $PY -m pip install -q ".[train]" trl==1.16.0 "datasets>=4.7" deepspeed==0.19.8 || return 1
    fi
    $PY - <<'EOF'
import importlib
for name in ("torch", "transformers", "accelerate", "peft", "trl", "datasets", "deepspeed", "lr_eval.train.trainer"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '')} {module.__file__}")
    except Exception as err:  # noqa: BLE001 - report every missing piece, the steps below say what it costs
        print(f"{name}: NOT IMPORTABLE ({type(err).__name__}: {err})")
import torch
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF
}

step install install
if [ "$TINY" = "--tiny" ]; then
    step prefix_parity $PY benchmarks/prefix_parity.py --tiny --out-dir "$RES"
    step engine_check $PY benchmarks/engine_check.py --cpu --out-dir "$RES"
    step dpo_throughput $PY benchmarks/dpo_throughput.py --tiny --out-dir "$RES"
else
    step prefix_parity $PY benchmarks/prefix_parity.py --out-dir "$RES"
    step engine_check timeout 270 $PY benchmarks/engine_check.py --timeout-s 120 --out-dir "$RES"
    left=$((BUDGET - (SECONDS - START) - 20))
    # Start no configuration later than 150 s before the end (a 64k TRL step alone can take a minute).
    step dpo_throughput timeout "$left" $PY benchmarks/dpo_throughput.py --lengths 32768 65536 16384 \
        --time-budget-s $((left - 150)) --out-dir "$RES"
fi

summary() {
    $PY - "$RES" "$TINY" <<'EOF'
import json, math, sys
from pathlib import Path
res, tiny = Path(sys.argv[1]), sys.argv[2] == "--tiny"
def load(name):
    path = res / name
    return json.loads(path.read_text()) if path.is_file() else None
lines = []
pp = load("prefix_parity_tiny.json" if tiny else "prefix_parity.json")
key = "float32" if tiny else "bfloat16"
value = pp["results"][key]["loss"] if pp else math.nan
lines.append(f"RESULT prefix_parity_{'fp32' if tiny else 'bf16'}_loss_diff {value:.3g} "
             f"(target <= {1e-4 if tiny else 1e-2:g})")
ec = load("engine_check_cpu.json" if tiny else "engine_check.json")
rows = [r for r in (ec or {}).get("rows", []) if r["dtype"] == "float32"]
worst = max((max(r["metrics"], r["weights"]) for r in rows if r["status"] == "ok"), default=math.nan)
if any(r["status"] != "ok" for r in rows):
    worst = math.nan
lines.append(f"RESULT engine_max_abs_diff {worst:.3g} (target <= {ec['meta']['tolerance'] if ec else 1e-4:g})")
tp = load("dpo_throughput_tiny.json" if tiny else "dpo_throughput.json")
ref = "96" if tiny else "32768"
speedup = (tp or {}).get("ratios", {}).get(f"lr-train@{ref}", math.nan)
lines.append(f"RESULT trl_speedup_at_{ref} {speedup:.3g} (target >= 1.8)")
if not tiny:
    ours = [r for r in (tp or {}).get("rows", []) if r["method"] == "lr-train" and r["length"] == 65536]
    peak = ours[0]["peak_gib"] if ours and ours[0]["status"] == "ok" else math.nan
    lines.append(f"RESULT peak_gib_at_65536 {peak:.3g} (target <= 80)")
text = "\n".join(lines)
print(text)
(res / "summary.txt").write_text(text + "\n")
EOF
}
step summary summary
echo "failed steps: ${FAILED[*]:-none}; results in $RES" | tee -a "$LOG"
if [ -n "${OUT:-}" ]; then
    cp "$RES"/*.json "$RES"/*.md "$RES"/summary.txt "$LOG" "$OUT"/ 2>/dev/null
fi
[ ${#FAILED[@]} = 0 ]
