"""Readable CLI output with rich: task tables, one task with its history, queue statistics.

Kept apart from the commands so the commands read as what they do, and so --json output never
passes through here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from tamma_trio.cli.task_rows import outcome_of
from tamma_trio.cli.timefmt import local_time
from tamma_trio.models import QueueStats, Task, TaskEvent, TaskPriority, TaskStatus
from tamma_trio.service_events import Notification, NotificationStatus

STATUS_STYLE = {
    TaskStatus.QUEUED: "cyan",
    TaskStatus.IN_PROGRESS: "yellow",
    TaskStatus.COMPLETED: "green",
    TaskStatus.FAILED: "red",
    TaskStatus.CANCELLED: "dim",
}


def console() -> Console:
    """A console that does not squeeze tables to 80 columns when piped."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=160)


def when(value: dt.datetime | None) -> str:
    return local_time(value)


def print_task_table(tasks: Sequence[Task]) -> None:
    table = Table("id", "type", "priority", "status", "attempts", "subject", "created", "outcome")
    for task in tasks:
        style = STATUS_STYLE[task.status]
        table.add_row(
            str(task.id),
            task.type.value,
            TaskPriority(task.priority).name.lower(),
            f"[{style}]{task.status.value}[/]",
            f"{task.attempts}/{task.max_retries + 1}",
            task.subject,
            when(task.created_at),
            outcome_of(task),
        )
    out = console()
    out.print(table if tasks else "no tasks")


def print_task(task: Task, events: Sequence[TaskEvent]) -> None:
    out = console()
    fields = {
        "id": task.id,
        "type": task.type.value,
        "status": task.status.value,
        "priority": TaskPriority(task.priority).name.lower(),
        "attempts": f"{task.attempts} of {task.max_retries + 1}",
        "subject": task.subject,
        "key": task.key or "-",
        "created": when(task.created_at),
        "not before": when(task.not_before),
        "started": when(task.started_at),
        "finished": when(task.finished_at),
        "error": task.error or "-",
        "result": json.dumps(task.result) if task.result else "-",
        "payload": json.dumps(task.payload),
    }
    for name, value in fields.items():
        out.print(f"[bold]{name:>10}[/]  {value}", highlight=False)
    history = Table("at", "event", "actor", "status", "detail", title="events")
    for event in events:
        detail = json.dumps(event.detail) if event.detail else ""
        status = event.status.value if event.status else ""
        history.add_row(when(event.at), event.kind, event.actor, status, detail)
    out.print(history)


def print_stats(stats: QueueStats) -> None:
    out = console()
    table = Table("status", "tasks")
    for status, count in stats.public()["by_status"].items():
        table.add_row(status, str(count))
    out.print(table)
    age = stats.oldest_queued_age
    out.print(f"queue depth: {stats.queue_depth}")
    out.print(f"oldest queued: {'-' if age is None else f'{age:.1f} s'}")


def print_notification_table(deliveries: Sequence[Notification], targets: dict[str, str]) -> None:
    """Webhook deliveries; ``targets`` maps stored target names to printable URLs."""
    table = Table("id", "event", "type", "target", "status", "attempts", "next attempt", "error")
    for item in deliveries:
        table.add_row(
            str(item.id),
            str(item.event.id),
            item.event.kind.value,
            targets.get(item.target, f"{item.target} (not configured)"),
            item.status.value,
            str(item.attempts),
            when(item.next_attempt_at) if item.status is NotificationStatus.PENDING else "-",
            item.last_error or "",
        )
    out = console()
    out.print(table if deliveries else "no deliveries")
