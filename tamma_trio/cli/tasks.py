"""`tamma-trio tasks ...`: add, list, show, cancel, retry and count tasks in the store.

The CLI writes the same SQLite file as a running daemon (WAL lets both in), so an operator can
act while the daemon works; the daemon notices new tasks within poll_interval and a cancelled
task at its next lease renewal.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import trio

from tamma_trio import strict_json
from tamma_trio.cli.common import ROW_ID, fail_usage, with_config
from tamma_trio.config import Config
from tamma_trio.errors import FieldError
from tamma_trio.models import Task, TaskPriority, TaskStatus, parse_task_type

if TYPE_CHECKING:  # the writers' imports are made in their commands: `tasks list` needs none
    from tamma_trio.store.base import TaskStore

T = TypeVar("T")

command = click.Group("tasks", help="Add, list, inspect, cancel, retry and prune tasks.")

STATUS_CHOICE = click.Choice([status.value for status in TaskStatus])


def run_with_store(
    config: Config, action: Callable[[TaskStore], Awaitable[T]], *, create: bool = False
) -> T:
    """Open the configured store, run one async action on it, and close it again.

    Only a command that adds tasks (``create``) may create the database: a read, or a cancel of
    a task that cannot exist, says there is no database instead of leaving an empty one.
    """
    from tamma_trio.store import open_store

    queue = config.service.queue
    if queue.type == "memory":
        fail_usage("the memory queue lives inside the daemon; use the HTTP API or a sqlite queue")
    if queue.type == "sqlite" and not create and not queue.sqlite.path.exists():
        fail_usage(
            f"no task database at {queue.sqlite.path}: nothing was queued there yet "
            "(or --config / TAMMA_CONFIG points elsewhere)"
        )

    async def main() -> T:
        queue, lease = config.service.queue, config.service.lease_duration
        async with open_store(queue, lease_seconds=lease) as store:
            return await action(store)

    return trio.run(main)


class PriorityType(click.ParamType[int]):
    """A priority as a number 0-3 or its name (low, normal, high, critical)."""

    name = "priority"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip().lower()
        if text.isdigit() and int(text) in tuple(TaskPriority):
            return int(text)
        names = {priority.name.lower(): int(priority) for priority in TaskPriority}
        if text in names:
            return names[text]
        self.fail(f"{value!r} is not 0-3 or one of {', '.join(names)}", param, ctx)


def read_payload(text: str) -> Any:
    """Parse --payload: inline JSON, or @FILE to read the JSON from a file (strict JSON)."""
    try:
        if not text.startswith("@"):
            return strict_json.loads(text, "--payload")
        path = Path(text[1:])
        try:
            raw = path.read_bytes()
        except OSError as exc:
            fail_usage(f"cannot read payload file {path}: {exc.strerror}")
        return strict_json.loads(raw, f"payload file {path}")
    except strict_json.JsonError as exc:
        fail_usage(str(exc))


@command.command("add")
@click.argument("task_type", metavar="TYPE")
@click.option("--payload", required=True, help="JSON object, or @FILE to read it from a file.")
@click.option(
    "--priority", type=PriorityType(), default=int(TaskPriority.NORMAL), show_default=True
)
@click.option("--max-retries", type=click.IntRange(0, 10), default=None)
@click.option("--key", default=None, help="Idempotency key: a known key adds nothing.")
@with_config
def add(
    task_type: str,
    payload: str,
    priority: int,
    max_retries: int | None,
    key: str | None,
    config: Config,
) -> int:
    """Add a task and print its id."""
    parse_task_type(task_type)  # an unknown type is refused before the payload is even read
    request = {"type": task_type, "payload": read_payload(payload), "priority": priority}
    if max_retries is not None:
        request["max_retries"] = max_retries
    if key is not None:
        request["key"] = key
    from tamma_trio.intake import Intake
    from tamma_trio.intake.requests import new_task_from

    try:
        new = new_task_from(
            request,
            default_retries=config.service.max_retries,
            actor="cli",
            forge_kind=config.engine.forge_kind,
        )
    except FieldError as exc:
        fail_usage(str(exc))
    task, _created = run_with_store(
        config, lambda store: Intake(store).submit_one(new, source="cli"), create=True
    )
    click.echo(task.id)
    return 0


@command.command("cancel")
@click.argument("task_id", type=ROW_ID)
@with_config
def cancel(task_id: int, config: Config) -> int:
    """Cancel a queued or running task."""
    return _print_status(run_with_store(config, lambda store: store.cancel(task_id, actor="cli")))


@command.command("retry")
@click.argument("task_id", type=ROW_ID)
@with_config
def retry(task_id: int, config: Config) -> int:
    """Send a failed or cancelled task back to the queue with a fresh retry budget."""
    return _print_status(run_with_store(config, lambda store: store.retry(task_id, actor="cli")))


def _print_status(task: Task) -> int:
    """What an operator's status change left: the task's status now."""
    click.echo(f"task {task.id} {task.status.value}")
    return 0


@command.command("approve")
@click.argument("task_id", type=ROW_ID)
@click.option("--as", "approver", default="operator", show_default=True, help="Who approves.")
@with_config
def approve(task_id: int, approver: str, config: Config) -> int:
    """Run an issue escalated for approval again, with its plan approved."""
    from tamma_trio.comment_commands import is_bot
    from tamma_trio.intake import Intake
    from tamma_trio.intake.build import approval_of

    if not approver.strip() or is_bot(approver, config.service.bot_name):
        fail_usage(f"{approver!r} cannot approve (the bot can never approve)")

    async def queue_approved(store: TaskStore) -> Task:
        new = approval_of(await store.get(task_id), approver, key=f"approve:{task_id}", actor="cli")
        task, _created = await Intake(store).submit_one(new, source="cli")
        return task

    task = run_with_store(config, queue_approved)
    click.echo(f"queued task {task.id}: task {task_id} approved by {approver}")
    return 0


@command.command("stats")
@click.option("--json", "as_json", is_flag=True)
@with_config
def stats(as_json: bool, config: Config) -> int:
    """Counts by status, queue depth and the age of the oldest queued task."""
    result = run_with_store(config, lambda store: store.stats())
    if as_json:
        click.echo(json.dumps(result.public(), indent=2))
    else:
        from tamma_trio.cli import render

        render.print_stats(result)
    return 0
