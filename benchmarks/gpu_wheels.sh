#!/usr/bin/env bash
# Wheels for benchmarks/gpu_check.sh on a GPU machine without internet (run here, on a machine with PyPI):
# the packages its image lacks, or has in other versions than we test, for CPython 3.12 on x86-64 Linux,
# into .whl/ (git-ignored). The image is expected to hold CUDA torch, accelerate, tokenizers, safetensors,
# huggingface-hub, pyarrow, pandas, xxhash, fsspec, psutil, ninja, msgpack, py-cpuinfo, einops, nvidia-ml-py.
# DeepSpeed ships as a source archive only: it is built into a wheel here with its CUDA ops left to JIT.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=.whl
mkdir -p "$DEST"
platform=(--only-binary=:all: --python-version 3.12 --implementation cp
          --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
$PY -m pip download -q --no-deps "${platform[@]}" -d "$DEST" \
    transformers==5.24.0 peft==0.21.2 trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 \
    hjson==3.1.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
DS_BUILD_OPS=0 $PY -m pip wheel -q --no-deps -w "$DEST" deepspeed==0.19.8
ls -l "$DEST"
du -sh "$DEST"
