"""`tamma-trio tasks prune` and `tamma-trio db backup`: keeping a long-running store in shape.

Prune does by hand what the daemon's retention does on its own, for an operator who wants the
space back now or a different cut-off; backup makes the consistent copy an upgrade or a move
starts from, while the daemon keeps running.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tamma_trio.cli.common import fail_usage, with_config
from tamma_trio.cli.timefmt import local_time
from tamma_trio.config import Config
from tamma_trio.models import TaskStatus

if TYPE_CHECKING:
    from tamma_trio.store.base import TaskStore

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
FINISHED = ("completed", "failed", "cancelled")


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` -> seconds; exit 2 naming the bad value."""
    found = _AGE.match(text.lower())
    if found is None:
        fail_usage(f"--older-than {text!r} is not a number with a unit s, m, h, d or w (e.g. 30d)")
    return float(found.group(1)) * UNITS[found.group(2)]


@click.command("prune")
@click.option("--older-than", "older_than", required=True, help="Age such as 30d, 12h or 2w.")
@click.option(
    "--status",
    "statuses",
    type=click.Choice(FINISHED),
    multiple=True,
    help="Only tasks that ended so (repeatable; default: every finished status).",
)
@click.option("--dry-run", is_flag=True, help="Say how many would go; delete nothing.")
@with_config
def prune(older_than: str, statuses: tuple[str, ...], dry_run: bool, config: Config) -> int:
    """Delete finished tasks (and their events) that ended longer ago than --older-than, the
    service events and delivered notifications as old (dead ones too when failed tasks go),
    and the worktrees and logs no remaining task needs."""
    import time

    from tamma_trio.cli.tasks import run_with_store

    before = time.time() - parse_age(older_than)
    wanted = [TaskStatus(status) for status in statuses or FINISHED]
    pruned = run_with_store(config, lambda store: _prune(store, config, wanted, before, dry_run))
    verb = "would prune" if dry_run else "pruned"
    which = "/".join(status.value for status in wanted)
    click.echo(f"{verb} {pruned.tasks} {which} task(s) that ended before {local_time(before)}")
    click.echo(
        f"{verb} {pruned.events} service event(s) and {pruned.notifications} notification(s)"
    )
    if pruned.issues:
        verb = "would remove" if dry_run else "removed"
        click.echo(f"{verb} the kept worktrees and logs of {pruned.issues} issue(s)")
    return 0


@dataclass(frozen=True)
class Pruned:
    tasks: int
    events: int
    notifications: int
    issues: int  # whose kept worktrees and logs went


async def _prune(
    store: TaskStore, config: Config, wanted: list[TaskStatus], before: float, dry_run: bool
) -> Pruned:
    """Tasks, then the outbox, then kept work; a dry run counts them all, deleting nothing."""
    from tamma_trio.retention import prune_all, prune_events
    from tamma_trio.workspace_retention import workspace_retention

    batch = config.retention.batch_size
    gone: set[int] = set()
    if dry_run:  # the ids, so the workspace count can treat them as pruned already
        gone = set(await store.prune(before, wanted, 10**9, dry_run=True))
        tasks = len(gone)
    else:
        tasks = await prune_all(store, wanted, before, batch)
    dead_before = before if TaskStatus.FAILED in wanted else 0.0  # dead: like failed tasks
    outbox = await prune_events(store, before, dead_before, batch, dry_run=dry_run)
    sweeper = workspace_retention(config, store)
    issues = 0 if sweeper is None else await sweeper.sweep(gone=gone, dry_run=dry_run)
    return Pruned(tasks, outbox.events, outbox.notifications, issues)


db = click.Group("db", help="The SQLite task store's file.")


@db.command("backup")
@click.argument("target", type=click.Path(path_type=Path, dir_okay=False))
@with_config
def backup(target: Path, config: Config) -> int:
    """Write an online, consistent copy of the database to TARGET (a new file)."""
    from tamma_trio.errors import StoreError
    from tamma_trio.store.sqlite_housekeeping import backup_file

    queue = config.service.queue
    if queue.type != "sqlite":
        fail_usage(f"db backup copies a sqlite queue; this config uses {queue.type}")
    source = queue.sqlite.path
    if not source.is_file():
        fail_usage(f"there is no database at {source}")
    if target.exists():
        fail_usage(f"{target} already exists; choose a new file")
    if not target.parent.is_dir():
        fail_usage(f"{target.parent} is not a directory")
    try:
        size = backup_file(source, target)
    except (StoreError, OSError) as exc:
        target.unlink(missing_ok=True)
        click.echo(f"error: backup failed: {exc}", err=True)
        return 1
    click.echo(f"backed up {source} to {target} ({size} bytes)")
    return 0
