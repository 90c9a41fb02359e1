"""`tamma-trio tasks list`, `tasks show` and `tasks logs`: what the daemon is doing, and did.

The list fits an 80-column terminal, shows each running task's current step and how long it
has been at it, says when more rows exist than shown, and with ``--watch`` redraws itself in
place. `show` explains one task: its fields, the step timeline, the approval decisions rule by
rule, where its logs are, and the event trail; `logs` prints those logs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from typing import Any

import click

from tamma_trio.cli.common import ROW_ID, with_config
from tamma_trio.config import Config
from tamma_trio.models import TaskStatus, parse_task_type

STATUS_CHOICE = click.Choice([status.value for status in TaskStatus])


def tasks_group() -> click.Group:
    """The `tasks` group with every subcommand: those that change tasks live in tasks.py."""
    from tamma_trio.cli.housekeeping import prune
    from tamma_trio.cli.tasks import command

    for subcommand in (list_, show, logs, prune):
        command.add_command(subcommand)
    return command


@click.command("list")
@click.option("--status", type=STATUS_CHOICE, default=None)
@click.option("--type", "task_type", default=None, help="Only tasks of this type.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Every task, however many (not --limit).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@click.option("--watch", is_flag=True, help="Redraw every --interval seconds until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(0.2, 3600), default=2.0, show_default=True)
@with_config
def list_(
    status: str | None,
    task_type: str | None,
    limit: int,
    show_all: bool,
    as_json: bool,
    watch: bool,
    interval: float,
    config: Config,
) -> int:
    """List tasks, newest first; running ones with their current step and elapsed time."""
    from tamma_trio.cli.live import list_live
    from tamma_trio.cli.tasks import run_with_store

    wanted_type = parse_task_type(task_type) if task_type else None
    wanted_status = TaskStatus(status) if status else None
    most = None if show_all else limit

    async def fetch(store: Any) -> Any:
        return await list_live(store, wanted_status, wanted_type, most)

    if watch:
        return _watch(config, fetch, limit, interval)
    listing = run_with_store(config, fetch)
    if as_json:
        click.echo(json.dumps([task.public() for task in listing.tasks], indent=2))
        return 0
    _print_listing(listing, limit)
    return 0


def _print_listing(listing: Any, limit: int, header: str | None = None) -> None:
    """With rich at a terminal; as plain text into a pipe or a file (no colour to show)."""
    from tamma_trio.cli.task_rows import more_note, plain_table

    now = dt.datetime.now(dt.UTC)
    note = more_note(listing, limit)
    if not sys.stdout.isatty():
        lines = [header, plain_table(listing, now), note]
        click.echo("\n".join(line for line in lines if line))
        return
    from tamma_trio.cli.render_live import table_console, task_table

    out = table_console()
    if header:
        out.print(header)
    out.print(task_table(listing, now))
    if note:
        out.print(note, style="dim")


def _watch(config: Config, fetch: Any, limit: int, interval: float) -> int:
    """Redraw the table in place (clearing a terminal first) until Ctrl-C, then exit 0."""
    import trio

    from tamma_trio.cli.render_live import table_console
    from tamma_trio.cli.tasks import run_with_store
    from tamma_trio.cli.timefmt import local_time

    async def loop(store: Any) -> None:
        while True:
            listing = await fetch(store)
            table_console().clear()
            header = f"tasks at {local_time(dt.datetime.now(dt.UTC))}, every {interval:g} s"
            _print_listing(listing, limit, header + " (Ctrl-C stops)")
            await trio.sleep(interval)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends
        run_with_store(config, loop)
    return 0


@click.command("show")
@click.argument("task_id", type=ROW_ID)
@click.option("--json", "as_json", is_flag=True)
@with_config
def show(task_id: int, as_json: bool, config: Config) -> int:
    """One task: its fields, step timeline, approval decisions, log paths and events."""
    from tamma_trio.cli import render
    from tamma_trio.cli.live import approvals, log_files
    from tamma_trio.cli.render_live import log_lines, step_table
    from tamma_trio.cli.tasks import run_with_store
    from tamma_trio.timeline import APPROVAL_EVENT, step_timeline

    async def fetch(store: Any) -> tuple[Any, Any]:
        return await store.get(task_id), await store.events(task_id)

    task, events = run_with_store(config, fetch)
    if as_json:
        document = {**task.public(), "events": [event.model_dump(mode="json") for event in events]}
        click.echo(json.dumps(document, indent=2))
        return 0
    out = render.console()
    render.print_task(task, events)
    spans = step_timeline(events)
    if spans:
        out.print(step_table(spans, dt.datetime.now(dt.UTC)))
    decisions = [event.detail for event in events if event.kind == APPROVAL_EVENT]
    if decisions:
        out.print("[bold]approval[/]", highlight=False)
        for line in approvals(decisions):
            out.print(f"  {line}", highlight=False, markup=False)
    out.print("[bold]logs[/]", highlight=False)
    for line in log_lines(log_files(config, task)):
        out.print(f"  {line}", highlight=False, markup=False)
    return 0


@click.command("logs")
@click.argument("task_id", type=ROW_ID)
@click.option("--tail", "tail", type=click.IntRange(1), default=None, help="Last N lines each.")
@with_config
def logs(task_id: int, tail: int | None, config: Config) -> int:
    """Print the task's prompt, agent and test logs (the workflow engine keeps them)."""
    from tamma_trio.cli.live import log_files
    from tamma_trio.cli.tasks import run_with_store

    task = run_with_store(config, lambda store: store.get(task_id))
    paths = log_files(config, task)
    if not paths:
        click.echo(
            f"task {task_id} has no logs (only issue tasks of the workflow engine do)", err=True
        )
        return 1
    for path in paths:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        click.echo(f"==> {path} <==")
        for line in lines[-tail:] if tail else lines:
            click.echo(line)
    return 0
