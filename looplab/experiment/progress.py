"""A live progress line per session: frame, FPS, ETA, latest return."""

from __future__ import annotations

import math
import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


class ProgressView:
    def __init__(self, num_sessions: int, max_frame: int, enabled: bool = True):
        self.enabled = enabled
        self.console = Console(file=sys.stderr)
        self.progress = Progress(
            TextColumn("[bold]s{task.fields[session]}"),
            BarColumn(bar_width=24),
            TextColumn("frame {task.completed:>9,.0f}/{task.total:,.0f}"),
            TextColumn("{task.fields[fps]:>7} fps"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("return {task.fields[ret]:>8}  ma {task.fields[ma]:>8}"),
            console=self.console,
            transient=False,
            disable=not enabled,
        )
        self.tasks = [self.progress.add_task("", total=max_frame, session=s, fps="-", ret="-", ma="-")
                      for s in range(num_sessions)]

    def __enter__(self) -> ProgressView:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, item: dict) -> None:
        if not self.enabled:
            return
        fmt = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"  # noqa: E731
        self.progress.update(self.tasks[item["session"]], completed=item["frame"], fps=f"{item['fps']:.0f}",
                             ret=fmt(item["total_reward"]), ma=fmt(item["total_reward_ma"]))
