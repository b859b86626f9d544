"""The GPU benchmarks run end to end in their --tiny CPU modes (smoke tests of the scripts gpu_check.sh runs)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("datasets")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_benchmark_runs_both_trainers_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    module = _load("dpo_throughput")
    assert module.main(["--tiny", "--lengths", "48", "--steps", "1", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.startswith("RESULT trl_speedup_at_48 ") and last.endswith("(target >= 1.8)")
    result = json.loads((tmp_path / "dpo_throughput_tiny.json").read_text())
    statuses = {(r["method"], r["length"]): r["status"] for r in result["rows"]}
    assert statuses == {("lr-train", 48): "ok", ("TRL 1.16", 48): "ok"}
    assert (tmp_path / "dpo_throughput_tiny.md").is_file()


def test_tiny_prefix_parity_compares_shared_and_unshared(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("peft")
    module = _load("prefix_parity")
    assert module.main(["--tiny", "--out-dir", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("RESULT prefix_parity_fp32_loss_diff ") and last.endswith("(target <= 0.0001)")
    result = json.loads((tmp_path / "prefix_parity_tiny.json").read_text())["results"]["float32"]
    assert result["ok"] and result["loss"] <= 1e-4 and result["grad_cos_gap"] <= 1e-3
    assert result["loss_shared"] > 0.6  # a real DPO + NLL loss, not an empty comparison
