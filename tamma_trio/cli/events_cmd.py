"""`tamma-trio events [--follow] [--json]`: the service event stream, read from the store.

It reads the store like the other commands (so it also shows what happened while no daemon
ran); ``--follow`` then keeps reading new events as the daemon writes them, until Ctrl-C.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json

import click
import trio

from tamma_trio.cli.common import EXIT_OK, with_config
from tamma_trio.cli.tasks import run_with_store
from tamma_trio.config import Config
from tamma_trio.service_events import ServiceEvent
from tamma_trio.store.base import TaskStore

FOLLOW_INTERVAL = 0.5
PAGE = 500


def event_line(event: ServiceEvent) -> str:
    """``2026-12-03 09:21:33  #12 task.failed  acme/widgets#7 task 7  tests failed``"""
    when = event.at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    parts = [when, f"#{event.id}", event.kind.value]
    if event.subject:
        parts.append(event.subject)
    if event.task_id is not None:
        parts.append(f"task {event.task_id}")
    if event.reason:
        parts.append(event.reason)
    return "  ".join(parts)


def show(event: ServiceEvent, as_json: bool) -> None:
    click.echo(json.dumps(event.public()) if as_json else event_line(event))


async def latest(store: TaskStore, after: int | None, last: int) -> list[ServiceEvent]:
    """Events after ``after``, or else the newest ``last`` of them, oldest first."""
    if after is not None:
        return await store.service_events(after=after, limit=last)
    kept: collections.deque[ServiceEvent] = collections.deque(maxlen=last)
    cursor = 0
    while page := await store.service_events(after=cursor, limit=PAGE):
        kept.extend(page)
        cursor = page[-1].id
    return list(kept)


@click.command("events")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--after", type=click.IntRange(min=0), default=None, help="Only events after ID.")
@click.option("--last", type=click.IntRange(1, 10_000), default=20, show_default=True)
@with_config
def command(follow: bool, as_json: bool, after: int | None, last: int, config: Config) -> int:
    """Print service events (started, stopped, task completed/failed/escalated, ...)."""

    async def run(store: TaskStore) -> None:
        cursor = after or 0
        for event in await latest(store, after, last):
            show(event, as_json)
            cursor = event.id
        while follow:
            await trio.sleep(FOLLOW_INTERVAL)
            for event in await store.service_events(after=cursor, limit=PAGE):
                show(event, as_json)
                cursor = event.id

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --follow
        run_with_store(config, run)
    return EXIT_OK
