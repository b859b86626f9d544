"""Rich progress bars for judge batches: done/total, rate, tokens, cost, failures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from .accounting import UsageMeter
    from .judge import JudgeClient
    from .types import ChatResult

console = Console(stderr=True, soft_wrap=True)


class BatchProgress:
    """One bar per outermost batch; nested batches (a scorer's stages) add to its total."""

    def __init__(self, owner: JudgeClient, desc: str, total: int, enabled: bool = True):
        self.owner = owner
        self.desc = desc
        self.total = total
        self.enabled = enabled and console.is_terminal
        self.failures = 0
        self._depth = 0
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> BatchProgress:
        self._depth += 1
        if self._depth == 1:
            self.owner._progress = self
            if self.enabled:
                self._progress = Progress(
                    TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[stats]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)
                self._progress.start()
                self._task = self._progress.add_task(self.desc, total=self.total, rate="", stats="")
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            if self._progress is not None:
                self._progress.stop()
            self.owner._progress = None

    def grow(self, extra: int) -> BatchProgress:
        """Join a nested batch: add its calls to this bar."""
        self.total += extra
        if self._progress is not None:
            self._progress.update(self._task, total=self.total)
        return self

    def advance(self, res: ChatResult, meter: UsageMeter) -> None:
        if not res.ok and res.error_kind != "dry_run":
            self.failures += 1
        if self._progress is None:
            return
        elapsed = max(meter.elapsed(), 1e-9)
        cost = meter.cost
        stats = (f"tok {meter.input_tokens:,}/{meter.output_tokens:,}  "
                 f"{'$%.4f' % cost if cost is not None else '$?'}  "
                 f"cached {meter.cache_hits}  failed {self.failures}")
        self._progress.update(self._task, advance=1, rate=f"{meter.paid / elapsed:.1f} req/s", stats=stats)
