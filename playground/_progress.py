"""A progress bar for long runs (the ladder's stages, sweeps), drawn by rich.

On a terminal it shows a bar with elapsed and remaining time; anywhere else
(a pipe, CI, a notebook's log) it prints nothing, so output stays clean.

    with progress_bar(total=len(stages), description="ladder") as bar:
        for stage in stages:
            bar.update(description=stage.name)
            run(stage)
            bar.advance()
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["progress_bar", "ProgressBar", "track"]

T = TypeVar("T")


class ProgressBar:
    """One bar: ``advance(steps)`` and ``update(description=...)``; a no-op when not on a terminal."""

    def __init__(self, progress: Progress | None, task_id) -> None:
        self._progress = progress
        self._task = task_id
        self.completed = 0

    def advance(self, steps: float = 1) -> None:
        self.completed += steps
        if self._progress is not None:
            self._progress.advance(self._task, steps)

    def update(self, *, description: str | None = None, total: float | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=description, total=total)


@contextmanager
def progress_bar(total: float | None, description: str = "", *, console: Console | None = None,
                 transient: bool = False) -> Iterator[ProgressBar]:
    """A bar for ``total`` steps (None: unknown). Shown only when ``console`` is a terminal."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield ProgressBar(None, None)
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=transient) as progress:
        yield ProgressBar(progress, progress.add_task(description, total=total))


def track(items: Iterable[T], description: str = "", *, total: float | None = None,
          console: Console | None = None) -> Iterator[T]:
    """Iterate ``items`` with a bar (``total`` defaults to ``len(items)`` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar(total, description, console=console) as bar:
        for item in items:
            yield item
            bar.advance()
