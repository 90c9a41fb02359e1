"""`tamma-trio deliveries list` and `tamma-trio issues comment`: the intake from the terminal.

``deliveries list`` answers "why did the bot not react?": every webhook delivery (and every
local forge comment) with what became of it. ``issues comment`` adds a comment to the local
forge and reads it exactly as a forge delivery is read (commands, who may give them), so the
offline quickstart can approve, retry and cancel.
"""

from __future__ import annotations

import json

import click

from tamma_trio.cli.common import ROW_ID, fail_usage, with_config
from tamma_trio.cli.forge import local_setup, open_db
from tamma_trio.cli.tasks import run_with_store
from tamma_trio.cli.timefmt import local_time
from tamma_trio.config import Config
from tamma_trio.delivery import Delivery
from tamma_trio.intake import Intake
from tamma_trio.intake.authorize import CommandRules
from tamma_trio.intake.deliveries import Answer, Deliveries, Meta
from tamma_trio.intake.intents import IssueRef
from tamma_trio.intake.local_forge import comment_intent
from tamma_trio.store.base import TaskStore

command = click.Group("deliveries", help="The webhook deliveries log.")


@command.command("list")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of lines.")
@with_config
def list_(limit: int, as_json: bool, config: Config) -> int:
    """Deliveries, newest first, with their outcome: task ids, or why nothing happened."""
    found = run_with_store(config, lambda store: store.list_deliveries(limit=limit))
    if as_json:
        click.echo(json.dumps([delivery.public() for delivery in found], indent=2))
    elif not found:
        click.echo("no deliveries")
    for delivery in [] if as_json else found:
        click.echo(describe(delivery))
    return 0


def describe(delivery: Delivery) -> str:
    """One line: when, forge, id, event/action, repository, sender, outcome and why."""
    event = f"{delivery.event}/{delivery.action}" if delivery.action else delivery.event
    tasks = " tasks " + ",".join(map(str, delivery.task_ids)) if delivery.task_ids else ""
    reason = f": {delivery.reason}" if delivery.reason else ""
    who = f"{delivery.repository or '-'} by {delivery.sender or '-'}"
    return (
        f"{local_time(delivery.received_at)}  {delivery.forge} {delivery.delivery_id}  {event}  "
        f"{who}  {delivery.outcome.value}{tasks}{reason}"
    )


async def _local_forge_may_command(repository: str, login: str) -> bool:
    """The local forge's live answer (LocalForge.author_may_command): its operator may."""
    return True


@click.command("comment")
@click.argument("number", type=ROW_ID)
@click.argument("text")
@click.option("--author", default="operator", show_default=True)
@with_config
def comment(number: int, text: str, author: str, config: Config) -> int:
    """Comment on an issue or pull request; a command in it acts as from a forge."""
    setup = local_setup(config)
    if not author.strip():
        fail_usage("the author must not be empty")
    with open_db(setup) as db:
        row = db.item(setup.repository, number)
        if row is None:
            fail_usage(f"{setup.repository} has no issue or pull request #{number}")
        comment_id = db.add_comment(setup.repository, number, author, text)
    target = IssueRef(setup.repository, number, row.title, is_pull_request=row.kind != "issue")
    intent = comment_intent(target, text, author, setup.bot)
    meta = Meta("local", f"comment-{comment_id}", "comment", "created", target.repository, author)
    svc = config.service
    rules = CommandRules.build(svc.bot_name, (), svc.command_authors, ())

    async def carry_out(store: TaskStore) -> Answer:
        deliveries = Deliveries(Intake(store), rules, _local_forge_may_command)
        return await deliveries.carry_out(meta, intent)

    answer = run_with_store(config, carry_out, create=True)
    click.echo(f"comment {comment_id} on #{number}: {describe(answer.delivery)}")
    return 0
