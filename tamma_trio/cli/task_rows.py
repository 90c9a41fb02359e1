"""The cells of `tasks list`, and the table as plain text when the output is not a terminal.

One source for both renderings: render_live.py draws these cells with rich (colours, the
terminal's width) for a person at a terminal; a pipe, a log or a script gets the same columns
as plain text from here, without loading rich for a table nobody sees in colour.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tamma_trio.cli.live import Listing
from tamma_trio.cli.timefmt import duration
from tamma_trio.models import Task, TaskStatus
from tamma_trio.timeline import StepSpan

MAX_WIDTH = 80
GAP = "  "
SHORT_STATUS = {TaskStatus.IN_PROGRESS: "running"}
# Full names are what --type takes; these fit the 80 columns (the JSON keeps the full names).
SHORT_TYPE = {
    "issue_assigned": "issue",
    "issue_comment": "issue-comment",
    "pr_review_requested": "pr-review",
    "pr_comment": "pr-comment",
}


@dataclass(frozen=True)
class Column:
    name: str
    min_width: int = 0
    max_width: int | None = None  # the last column takes what is left of 80


COLUMNS = (
    Column("id", min_width=2),
    Column("type", max_width=13),
    Column("status", min_width=9),
    Column("step", max_width=14),
    Column("time", min_width=8),
    Column("subject", max_width=16),
    Column("outcome"),
)


def cells(task: Task, span: StepSpan | None, now: dt.datetime) -> tuple[str, ...]:
    return (
        str(task.id),
        SHORT_TYPE.get(task.type.value, task.type.value),
        SHORT_STATUS.get(task.status, task.status.value),
        span.step if span else "",
        time_cell(task, span, now),
        task.subject,
        outcome_of(task),
    )


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


def more_note(listing: Listing, limit: int) -> str | None:
    if not listing.more:
        return None
    return f"showing the newest {limit}; more exist (--limit N or --all)"


def plain_table(listing: Listing, now: dt.datetime) -> str:
    """The table in at most 80 columns; a cell too long for its column ends in an ellipsis."""
    if not listing.tasks:
        return "no tasks"
    header = tuple(column.name for column in COLUMNS)
    rows = [cells(task, listing.steps.get(task.id), now) for task in listing.tasks]
    widths = column_widths([header, *rows])
    return "\n".join(_line(row, widths) for row in [header, *rows])


def column_widths(rows: list[tuple[str, ...]]) -> list[int]:
    """Each column as wide as its longest cell within its bounds; the last gets the rest of
    the 80 columns, so one long outcome never squeezes the others out."""
    widths = []
    for index, column in enumerate(COLUMNS[:-1]):
        wanted = max(column.min_width, *(len(row[index]) for row in rows))
        widths.append(min(wanted, column.max_width) if column.max_width else wanted)
    widths.append(max(MAX_WIDTH - sum(widths) - len(GAP) * len(widths), len(COLUMNS[-1].name)))
    return widths


def _line(row: tuple[str, ...], widths: list[int]) -> str:
    fitted = (
        cell if len(cell) <= width else cell[: max(width - 1, 0)] + "…"
        for cell, width in zip(row, widths, strict=True)
    )
    return GAP.join(cell.ljust(width) for cell, width in zip(fitted, widths, strict=True)).rstrip()
