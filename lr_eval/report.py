"""End-of-run tables (rich) shared by the commands."""

from __future__ import annotations

from rich.table import Table

from .accounting import UsageMeter
from .progress import console


def print_usage(meter: UsageMeter, title: str = "judge usage") -> None:
    t = Table(title=title, show_header=False)
    for k, v in meter.summary().items():
        t.add_row(k, "unknown (no price)" if v is None and "cost" in k else f"{v:,}" if isinstance(v, int) else str(v))
    console.print(t)
