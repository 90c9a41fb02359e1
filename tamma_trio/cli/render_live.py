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
from tamma_trio.cli.timefmt import duration, local_time
from tamma_trio.models import Task, TaskStatus
from tamma_trio.timeline import StepSpan

STATUS_STYLE = {
    TaskStatus.QUEUED: "cyan",
    TaskStatus.IN_PROGRESS: "yellow",
    TaskStatus.COMPLETED: "green",
    TaskStatus.FAILED: "red",
    TaskStatus.CANCELLED: "dim",
}
SHORT_STATUS = {TaskStatus.IN_PROGRESS: "running"}
# Full names are what --type takes; these fit the 80 columns (the JSON keeps the full names).
SHORT_TYPE = {
    "issue_assigned": "issue",
    "issue_comment": "issue-comment",
    "pr_review_requested": "pr-review",
    "pr_comment": "pr-comment",
}
MAX_WIDTH = 80


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
    table = Table(box=None, pad_edge=False, expand=False)
    table.add_column("id", no_wrap=True, min_width=2)
    table.add_column("type", no_wrap=True, overflow="ellipsis", max_width=13)
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("step", no_wrap=True, overflow="ellipsis", max_width=14)
    table.add_column("time", no_wrap=True, min_width=8)
    table.add_column("subject", no_wrap=True, overflow="ellipsis", max_width=16)
    table.add_column("outcome", no_wrap=True, overflow="ellipsis", ratio=1)
    for task in listing.tasks:
        span = listing.steps.get(task.id)
        style = STATUS_STYLE[task.status]
        table.add_row(
            str(task.id),
            SHORT_TYPE.get(task.type.value, task.type.value),
            Text(SHORT_STATUS.get(task.status, task.status.value), style=style),
            span.step if span else "",
            time_cell(task, span, now),
            task.subject,
            outcome_of(task),
        )
    return table


def more_note(listing: Listing, limit: int) -> str | None:
    if not listing.more:
        return None
    return f"showing the newest {limit}; more exist (--limit N or --all)"


def time_cell(task: Task, span: StepSpan | None, now: dt.datetime) -> str:
    if task.status is TaskStatus.IN_PROGRESS:
        since = span.started if span else task.started_at
        return duration((now - since).total_seconds()) if since else ""
    if task.status is TaskStatus.QUEUED:
        due = (task.not_before - now).total_seconds()
        return (
            f"in {duration(due)}" if due > 0 else duration((now - task.created_at).total_seconds())
        )
    ended = task.finished_at or task.created_at
    return duration((now - ended).total_seconds()) + " ago"


def outcome_of(task: Task) -> str:
    if task.error:
        return task.error
    if task.result:
        return str(task.result.get("action", ""))
    return ""


def step_table(spans: Sequence[StepSpan], now: dt.datetime) -> RenderableType:
    table = Table("attempt", "step", "started", "took", "outcome", title="steps")
    for span in spans:
        took = duration(span.seconds(now))
        table.add_row(str(span.attempt), span.step, local_time(span.started), took, span.outcome)
    return table


def log_lines(paths: Sequence[Path]) -> list[str]:
    return [f"{path} ({path.stat().st_size} bytes)" for path in paths] or ["-"]
