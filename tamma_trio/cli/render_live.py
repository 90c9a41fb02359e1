"""The task table of `tasks list` (80 columns wide at most, running tasks with their step and
time in it) and the parts of `tasks show` that explain a task: steps, approvals, logs.

Every time is local with its zone (timefmt.py); ages are short durations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from tamma_trio.cli.live import Listing
from tamma_trio.cli.task_rows import COLUMNS, MAX_WIDTH, cells, column_widths
from tamma_trio.cli.timefmt import duration, local_time
from tamma_trio.models import TaskStatus
from tamma_trio.timeline import StepSpan

STATUS_STYLE = {
    TaskStatus.QUEUED: "cyan",
    TaskStatus.IN_PROGRESS: "yellow",
    TaskStatus.COMPLETED: "green",
    TaskStatus.FAILED: "red",
    TaskStatus.CANCELLED: "dim",
}


def table_console() -> Console:
    """The terminal's width up to 80 columns; 80 when piped, so lines never wrap in a log."""
    probe = Console()
    width = min(probe.width, MAX_WIDTH) if probe.is_terminal else MAX_WIDTH
    return Console(width=width, highlight=False)


def task_table(listing: Listing, now: dt.datetime) -> RenderableType:
    """id, type, status, step (running tasks), time (running: elapsed; queued: waiting;
    finished: since), subject and outcome; long cells end in an ellipsis."""
    if not listing.tasks:
        return Text("no tasks")
    rows = [cells(task, listing.steps.get(task.id), now) for task in listing.tasks]
    widths = column_widths([tuple(column.name for column in COLUMNS), *rows])
    table = Table(box=None, pad_edge=False, expand=False)
    for column, width in zip(COLUMNS, widths, strict=True):
        table.add_column(column.name, width=width, no_wrap=True, overflow="ellipsis")
    for task, row in zip(listing.tasks, rows, strict=True):
        status = Text(row[2], style=STATUS_STYLE[task.status])
        table.add_row(*row[:2], status, *row[3:])
    return table


def step_table(spans: Sequence[StepSpan], now: dt.datetime) -> RenderableType:
    table = Table("attempt", "step", "started", "took", "outcome", title="steps")
    for span in spans:
        took = duration(span.seconds(now))
        table.add_row(str(span.attempt), span.step, local_time(span.started), took, span.outcome)
    return table


def log_lines(paths: Sequence[Path]) -> list[str]:
    return [f"{path} ({path.stat().st_size} bytes)" for path in paths] or ["-"]
