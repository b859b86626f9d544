"""Entry-point plug-ins: how the parts (reward, tasks, ...) add commands and demo steps to the core
without the core importing them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any


def load_plugins(group: str) -> Iterator[tuple[str, Callable[..., Any]]]:
    """(name, object) for each entry point of `group`, sorted by name; a broken one is reported, not fatal."""
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            yield ep.name, ep.load()
        except Exception as e:  # noqa: BLE001 - an optional part must not take the whole CLI down
            print(f"lr-eval: plug-in {ep.value} unavailable: {e}", file=sys.stderr)
