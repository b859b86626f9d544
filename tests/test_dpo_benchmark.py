"""The GPU throughput benchmark runs end to end in its --tiny CPU mode (a smoke test of the script)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("datasets")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "dpo_throughput.py"


def test_tiny_benchmark_runs_both_trainers_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = importlib.util.spec_from_file_location("dpo_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--tiny", "--lengths", "48", "--steps", "1", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.startswith("RESULT trl_speedup_at_48 ") and last.endswith("(target >= 1.8)")
    result = json.loads((tmp_path / "dpo_throughput_tiny.json").read_text())
    statuses = {(r["method"], r["length"]): r["status"] for r in result["rows"]}
    assert statuses == {("lr-train", 48): "ok", ("TRL 1.16", 48): "ok"}
    assert (tmp_path / "dpo_throughput_tiny.md").is_file()
