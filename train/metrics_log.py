"""Per-step metrics to a JSONL file (every step) and the console (rich, every N steps).

Why JSONL: one self-contained record per step can be tailed, plotted and diffed between runs,
and a resumed run can cut the records past its checkpoint so the file stays one run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

_CONSOLE_KEYS = (
    ("loss", "loss", "{:.4f}"),
    ("dpo_loss", "dpo", "{:.4f}"),
    ("nll_loss", "nll", "{:.3f}"),
    ("rewards/accuracy", "acc", "{:.2f}"),
    ("rewards/margins", "margin", "{:+.4f}"),
    ("grad_norm", "|g|", "{:.3g}"),
    ("learning_rate", "lr", "{:.2e}"),
    ("tokens_per_s", "tok/s", "{:,.0f}"),
    ("mfu", "mfu", "{:.1%}"),
    ("peak_mem_gib", "mem", "{:.1f}GiB"),
)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLogger:
    """Appends step records to ``path``; prints a compact line every ``every`` steps."""

    def __init__(self, path: str | Path, every: int = 1, console: bool = True, total_steps: int | None = None):
        self.path = Path(path)
        self.every = max(1, every)
        self.total_steps = total_steps
        self._console = _make_console() if console else None

    def truncate_after(self, step: int) -> None:
        """Drop records of steps > ``step`` (a resumed run rewrites what came after its checkpoint)."""
        if not self.path.exists():
            return
        lines = [line for line in self.path.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
        step = record.get("step", 0)
        if self._console is not None and (step % self.every == 0 or step == self.total_steps):
            self.message(self.format(record))

    def format(self, record: dict[str, Any]) -> str:
        total = f"/{self.total_steps}" if self.total_steps else ""
        parts = [f"step {record.get('step')}{total}"]
        for key, label, fmt in _CONSOLE_KEYS:
            value = record.get(key)
            if value is not None and not (isinstance(value, float) and not math.isfinite(value)):
                parts.append(f"{label} {fmt.format(value)}")
        return "  ".join(parts)

    def message(self, text: str) -> None:
        if self._console is not None:
            _print(self._console, text)


def _make_console() -> Any:
    try:
        from rich.console import Console

        return Console()
    except ImportError:  # rich is optional for the benchmark's minimal environment
        return "print"


def _print(console: Any, text: str) -> None:
    if console == "print":
        print(text, flush=True)
    else:
        console.print(text, highlight=False, soft_wrap=True)


def console_message(text: str) -> None:
    """One line to the console, through rich when it is installed."""
    _print(_make_console(), text)
