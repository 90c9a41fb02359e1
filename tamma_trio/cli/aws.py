"""`tamma-trio aws init`: create the SQS queues, the dead-letter queue and the DynamoDB tables.

Idempotent: run it again and it reports what already exists, and corrects queue settings that
drifted (the visibility timeout follows `[service] lease_duration`). `config check` and `serve`
call ``queue_problems`` and refuse a missing or mis-set queue with the same words.
"""

from __future__ import annotations

import click

from tamma_trio.cli.common import EXIT_FAILURE, EXIT_OK, with_config
from tamma_trio.config import Config
from tamma_trio.errors import StoreError

command = click.Group("aws", help="Set up the Amazon SQS and DynamoDB backend.")


@command.command("init")
@with_config
def init(config: Config) -> int:
    """Create or correct the queues and tables named by [service.queue.sqs] queue_name."""
    from tamma_trio.store.aws.client import make_clients
    from tamma_trio.store.aws.names import AwsNames
    from tamma_trio.store.aws.setup import ensure

    sqs = config.service.queue.sqs
    try:
        lines = ensure(make_clients(sqs), AwsNames(sqs.queue_name), config.service.lease_duration)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_FAILURE
    for line in lines:
        click.echo(line)
    return EXIT_OK


def queue_problems(config: Config) -> list[str]:
    """What keeps the configured SQS queue from serving ([] for the other queue types)."""
    if config.service.queue.type != "sqs":
        return []
    from tamma_trio.store.aws.client import make_clients
    from tamma_trio.store.aws.names import AwsNames
    from tamma_trio.store.aws.setup import verify

    sqs = config.service.queue.sqs
    try:
        clients = make_clients(sqs)
        return verify(clients, AwsNames(sqs.queue_name), config.service.lease_duration)
    except StoreError as exc:
        return [str(exc)]
