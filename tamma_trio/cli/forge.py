"""`tamma-trio forge init`, `issues ...` and `prs ...`: the local forge from the command line.

The local forge is how tamma-trio runs with no network: issues and pull requests are rows in the
forge's own SQLite file (beside the task store's), origin is a bare repository. Adding an issue
labelled with the trigger label (or assigned to the bot) enqueues an issue_assigned task, exactly
as a forge webhook would, so a running daemon picks it up within its poll interval.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from tamma_trio.cli import forge_render as render
from tamma_trio.cli.common import (
    EXIT_USAGE,
    ROW_ID,
    config_option,
    fail_usage,
    load_or_exit,
    report_config_error,
    with_config,
)
from tamma_trio.cli.tasks import run_with_store
from tamma_trio.config import Config, resolve_config_path
from tamma_trio.engine.forge.base import Comment
from tamma_trio.engine.forge.local_db import ForgeDb
from tamma_trio.engine.forge.local_schema import ItemKind
from tamma_trio.engine.forge.seed import init_origin, is_bare_repository
from tamma_trio.engine.workflow_options import LocalForgeOptions, WorkflowOptions, parse_options
from tamma_trio.errors import ConfigError
from tamma_trio.intake.local_forge import issue_task

QUICKSTART_CONFIG = """\
# Written by `tamma-trio forge init`: the offline quickstart (see README).
[service]
poll_interval = 1

[service.queue.sqlite]
path = "./tamma.db"

[engine]
name = "workflow"
workspace_dir = "./workspaces"

[engine.forge]
kind = "local"
origin = "./origin.git"
repository = "local/demo"
trigger_label = "tamma"

[engine.agent]
command = [{python}, {agent}, "{{prompt_file}}"]
timeout = 120

[engine.tests]
command = [{python}, "-m", "unittest", "-q"]
timeout = 120
"""


@dataclass(frozen=True)
class LocalForgeSetup:
    settings: WorkflowOptions
    forge: LocalForgeOptions
    database: Path
    bot: str
    task_database: Path | None  # where an older install kept the forge's rows

    @property
    def repository(self) -> str:
        return self.forge.repository


def local_setup(config: Config) -> LocalForgeSetup:
    """The local forge the config describes, or exit 2 saying what is wrong."""
    if config.engine.name != "workflow":
        fail_usage(f'the local forge needs [engine] name = "workflow" (not {config.engine.name!r})')
    try:
        settings = parse_options(config.engine.options()).resolved(Path.cwd())
    except ConfigError as exc:
        report_config_error(exc)
        raise SystemExit(EXIT_USAGE) from None
    if not isinstance(settings.forge, LocalForgeOptions):
        fail_usage(f'engine.forge.kind is "{settings.forge.kind}": these commands need "local"')
    queue = config.service.queue
    store_path = queue.sqlite.path.resolve() if queue.type == "sqlite" else None
    database = settings.forge_database(store_path)
    return LocalForgeSetup(settings, settings.forge, database, config.service.bot_name, store_path)


@contextmanager
def open_db(setup: LocalForgeSetup) -> Iterator[ForgeDb]:
    db = ForgeDb(setup.database, setup.task_database)
    try:
        yield db
    finally:
        db.close()


# --- forge init ---------------------------------------------------------------------------

forge = click.Group("forge", help="Set up the local forge (offline mode).")


@forge.command("init")
@config_option
def init(config_path: Path | None) -> int:
    """Create the bare origin repository with a starter project (and ./tamma.toml if none).

    Run again, it keeps an existing config and origin and says so, so the quickstart's
    `forge init && serve` line works every time.
    """
    source = resolve_config_path(config_path, os.environ)
    if source is None:
        python, agent = json.dumps(sys.executable), json.dumps(str(example_agent()))
        Path("tamma.toml").write_text(
            QUICKSTART_CONFIG.format(python=python, agent=agent), encoding="utf-8"
        )
        click.echo("wrote tamma.toml (the offline quickstart config)")
    else:
        click.echo(f"kept {source} (an existing config)")
    config = load_or_exit(config_path)
    setup = local_setup(config)
    origin = setup.forge.origin
    branch = setup.forge.default_branch
    if is_bare_repository(origin):
        click.echo(f"kept {origin} (an existing bare repository)")
    else:
        try:
            init_origin(origin, branch)
        except FileExistsError:
            fail_usage(f"{origin} already exists and is not a bare git repository")
        click.echo(f"created {origin} ({branch}: a starter project)")
    click.echo(
        f'next: tamma-trio serve, then tamma-trio issues add "..." --label {_trigger(setup)}'
    )
    return 0


def example_agent() -> Path:
    """examples/agent.py of this checkout (here, or beside the installed package), so the
    quickstart config works from any directory; the relative path when neither exists."""
    relative = Path("examples", "agent.py")
    package_root = Path(__file__).resolve().parents[2]
    for candidate in (Path.cwd() / relative, package_root / relative):
        if candidate.is_file():
            return candidate.resolve()
    return relative


def _trigger(setup: LocalForgeSetup) -> str:
    return setup.forge.trigger_label


# --- issues -------------------------------------------------------------------------------

issues = click.Group("issues", help="Issues of the local forge.")


@issues.command("add")
@click.argument("title")
@click.option("--body", default="", help="The issue's description (markdown).")
@click.option("--label", "labels", multiple=True, help="A label; repeat for more.")
@click.option("--assign", is_flag=True, help="Assign the issue to the bot.")
@click.option("--author", default="operator", show_default=True)
@with_config
def add(
    title: str, body: str, labels: tuple[str, ...], assign: bool, author: str, config: Config
) -> int:
    """Add an issue and print its number; the trigger label or --assign queues the work."""
    if not title.strip():
        fail_usage("the issue title must not be empty")
    if any(not label.strip() for label in labels):
        fail_usage("a label must not be empty")
    setup = local_setup(config)
    assignees = (setup.bot,) if assign else ()
    with open_db(setup) as db:
        number = db.add_issue(setup.repository, title.strip(), body, author, labels, assignees)
    click.echo(number)
    if assign or _trigger(setup) in labels:
        _enqueue_issue(config, setup, number, title.strip())
    return 0


def _enqueue_issue(config: Config, setup: LocalForgeSetup, number: int, title: str) -> None:
    if config.service.queue.type != "sqlite":
        click.echo("note: not queued (only a sqlite queue can be reached from the CLI)", err=True)
        return
    new = issue_task(setup.repository, number, title, max_retries=config.service.max_retries)
    task, _ = run_with_store(config, lambda store: store.add(new), create=True)
    click.echo(f"queued task {task.id} (issue_assigned for #{number})", err=True)


@issues.command("list")
@click.option("--state", type=click.Choice(["open", "closed", "all"]), default="open")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@with_config
def list_issues(state: str, as_json: bool, config: Config) -> int:
    """List issues, oldest first."""
    return _list_items(config, "issue", state, as_json)


@issues.command("show")
@click.argument("number", type=ROW_ID)
@click.option("--json", "as_json", is_flag=True)
@with_config
def show_issue(number: int, as_json: bool, config: Config) -> int:
    """Show one issue with its comments."""
    setup = local_setup(config)
    with open_db(setup) as db:
        row = db.item(setup.repository, number)
        if row is None or row.kind != "issue":
            fail_usage(f"{setup.repository} has no issue #{number}")
        comments = db.comments(setup.repository, number)
    return _show_item(
        render.item_json(row), comments, as_json, lambda: render.print_item(row, comments)
    )


# --- pull requests ------------------------------------------------------------------------

prs = click.Group("prs", help="Pull requests of the local forge.")


@prs.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@with_config
def list_prs(as_json: bool, config: Config) -> int:
    """List pull requests, oldest first."""
    return _list_items(config, "pull", "all", as_json)


@prs.command("show")
@click.argument("number", type=ROW_ID)
@click.option("--json", "as_json", is_flag=True)
@with_config
def show_pr(number: int, as_json: bool, config: Config) -> int:
    """Show one pull request: branch, head, CI check, merge commit and comments."""
    setup = local_setup(config)
    with open_db(setup) as db:
        pull = db.pull(setup.repository, number)
        if pull is None:
            fail_usage(f"{setup.repository} has no pull request #{number}")
        check = db.check(setup.repository, pull.head_sha) if pull.head_sha else None
        comments = db.comments(setup.repository, number)
    document = render.pull_json(pull, check)
    return _show_item(
        document, comments, as_json, lambda: render.print_item(pull.item, comments, extra=document)
    )


def _list_items(config: Config, kind: ItemKind, state: str, as_json: bool) -> int:
    """Issues or pull requests in ``state`` (or "all"), as a JSON array or a table."""
    setup = local_setup(config)
    with open_db(setup) as db:
        rows = [r for r in db.items(setup.repository, kind) if state in ("all", r.state)]
    if as_json:
        click.echo(json.dumps([render.item_json(row) for row in rows], indent=2))
    else:
        render.print_items(rows, "issues" if kind == "issue" else "pull requests")
    return 0


def _show_item(
    document: dict[str, Any], comments: list[Comment], as_json: bool, table: Callable[[], None]
) -> int:
    """One issue or pull request with its comments: JSON, or ``table`` for people."""
    if as_json:
        click.echo(
            json.dumps({**document, "comments": [c.model_dump() for c in comments]}, indent=2)
        )
    else:
        table()
    return 0


@prs.command("approve")
@click.argument("number", type=ROW_ID)
@click.option("--as", "reviewer", default="operator", show_default=True)
@with_config
def approve(number: int, reviewer: str, config: Config) -> int:
    """Approve a pull request (counts toward [engine.forge] required_approvals)."""
    setup = local_setup(config)
    if reviewer == setup.bot:
        fail_usage("the bot cannot approve its own pull request")
    with open_db(setup) as db:
        if db.pull(setup.repository, number) is None:
            fail_usage(f"{setup.repository} has no pull request #{number}")
        db.review(setup.repository, number, reviewer, "approved")
    click.echo(f"#{number} approved by {reviewer}")
    return 0


commands = (forge, issues, prs)
