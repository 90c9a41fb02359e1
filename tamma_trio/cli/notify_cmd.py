"""`tamma-trio notify list [--failed]` and `notify retry`: the webhook outbox, from the store.

Targets are shown as scheme and host only (their URLs may carry credentials); a delivery whose
target was removed from the config is shown by its stored name. A running daemon picks up
retried deliveries within its poll interval.
"""

from __future__ import annotations

import json

import click

from tamma_trio.cli import render
from tamma_trio.cli.common import EXIT_OK, fail_usage, with_config
from tamma_trio.cli.tasks import run_with_store
from tamma_trio.config import Config
from tamma_trio.service_events import Notification, NotificationStatus
from tamma_trio.store.base import TaskStore

command = click.Group("notify", help="Inspect and retry outbound webhook deliveries.")

STATUS_CHOICE = click.Choice([status.value for status in NotificationStatus])


def target_names(config: Config) -> dict[str, str]:
    return {target.name: target.shown for target in config.notify}


@command.command("list")
@click.option("--failed", is_flag=True, help="Only dead deliveries (every attempt failed).")
@click.option("--status", type=STATUS_CHOICE, default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@with_config
def list_(failed: bool, status: str | None, limit: int, as_json: bool, config: Config) -> int:
    """Deliveries newest first (pending ones by when they are due)."""
    if failed and status is not None and status != NotificationStatus.DEAD.value:
        fail_usage("--failed means --status dead; give only one of them")
    wanted = NotificationStatus.DEAD if failed else (NotificationStatus(status) if status else None)

    async def fetch(store: TaskStore) -> list[Notification]:
        return await store.notifications(status=wanted, limit=limit)

    deliveries = run_with_store(config, fetch)
    shown = target_names(config)
    if as_json:
        rows = [{**d.public(), "target_url": shown.get(d.target)} for d in deliveries]
        click.echo(json.dumps(rows, indent=2))
    else:
        render.print_notification_table(deliveries, shown)
    return EXIT_OK


@command.command("retry")
@click.argument("delivery_ids", nargs=-1, type=click.IntRange(min=1))
@click.option("--all", "every", is_flag=True, help="Every dead delivery.")
@with_config
def retry(delivery_ids: tuple[int, ...], every: bool, config: Config) -> int:
    """Queue dead deliveries again, with a fresh attempt budget."""
    if bool(delivery_ids) == every:
        fail_usage("name the dead deliveries to retry, or pass --all")

    async def requeue(store: TaskStore) -> int:
        return await store.renotify(None if every else delivery_ids)

    count = run_with_store(config, requeue)
    click.echo(f"{count} deliver{'y' if count == 1 else 'ies'} queued again")
    return EXIT_OK
