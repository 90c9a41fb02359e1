"""`tamma-trio serve`: run the daemon in the foreground until SIGTERM, SIGINT or SIGHUP.

Exit codes: 0 after a clean drain; 1 when it cannot start (another daemon holds the store, a port
is taken, the engine fails to initialise) or after a second signal cut the drain short; 2 for a
bad config, including an engine name or engine options that do not fit, or an API exposed beyond
loopback without a token. A failed start removes the store files it created, and a stop signal
during start-up exits 0. Once the servers are
up it prints one line to stdout, ``listening health=URL metrics=URL``, which scripts can parse to
learn the ports (port 0 in the config picks a free one).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tamma_trio.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    config_option,
    load_or_exit,
    report_config_error,
)
from tamma_trio.cli.startup import preflight_problems, startup_block
from tamma_trio.config import Config
from tamma_trio.errors import ConfigError, TammaError, sole_cause

if TYPE_CHECKING:
    from tamma_trio.start_guard import StartupSignals


@click.command("serve")
@config_option
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default=None,
    help="Log line format (default: [log] format in the config, else console).",
)
def command(config_path: Path | None, log_format: str | None) -> int:
    """Run the daemon: claim and run tasks, serve health, metrics and the tasks API."""
    from tamma_trio.start_guard import StartupSignals

    early = StartupSignals().install()  # before the slow part: config, imports, trio
    config = load_or_exit(config_path)
    fmt = log_format or config.log.format
    _setup_process(config, fmt)
    try:
        problems = preflight_problems(config)
    except ConfigError as exc:
        report_config_error(exc)
        return EXIT_USAGE
    if problems:
        for problem in problems:
            click.echo(f"error: pre-flight: {problem}", err=True)
        return EXIT_USAGE
    # Imported here: the other commands should not pay for loading the whole daemon.
    import trio

    announce = Announcer(config, config_path, fmt)
    try:
        return trio.run(_serve, config, announce, early)
    except (TammaError, OSError, BaseExceptionGroup) as exc:
        cause = sole_cause(exc)
        if not isinstance(cause, TammaError | OSError):
            raise  # a bug: let the traceback show
        if isinstance(cause, ConfigError):
            report_config_error(cause)
            return EXIT_USAGE
        click.echo(f"error: {cause}", err=True)
        return EXIT_FAILURE


async def _serve(config: Config, announce: Announcer, early: StartupSignals) -> int:
    from tamma_trio.daemon import serve
    from tamma_trio.systemd import Notifier

    notifier = Notifier.from_environment(os.environ, os.getpid())
    try:
        return await serve(config, announce=announce, early=early, notifier=notifier)
    finally:
        notifier.close()


class Announcer:
    """Logs the start-up block once the servers are bound, then prints the listening line on
    stdout: as is for the console format, as one JSON object (message and urls) for json."""

    def __init__(self, config: Config, config_path: Path | None, log_format: str) -> None:
        self.config = config
        self.config_path = config_path
        self.log_format = log_format

    def __call__(self, listening: str) -> None:
        log = logging.getLogger("tamma_trio.startup")
        for line in startup_block(self.config, self.config_path, os.environ, listening):
            log.info("%s", line)
        if self.log_format == "json":
            from tamma_trio.log import json_record

            urls = dict(part.split("=", 1) for part in listening.split()[1:] if "=" in part)
            listening = json_record(log.name, listening, urls=urls)
        click.echo(listening)  # click.echo flushes, so a pipe sees the line at once


def _setup_process(config: Config, log_format: str) -> None:
    """Everything `serve` changes for the whole process, here rather than as a side effect of
    importing or building a part: logging, its record fields, and the metrics library."""
    from prometheus_client import disable_created_metrics

    from tamma_trio.log import setup_logging, skip_unused_record_fields

    # The *_created series double every scrape and carry nothing an operator reads.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    skip_unused_record_fields()

    token = config.service.api.token
    secrets = [token.get_secret_value() if token else None, _forge_token(config)]
    for target in config.notify:  # a webhook URL often is the credential (Slack's are)
        secrets.append(target.url.get_secret_value())
        secrets.append(target.secret.get_secret_value() if target.secret else None)
    setup_logging(config.log.level, log_format, secrets=secrets)


def _forge_token(config: Config) -> str | None:
    """The forge token from [engine.forge] (or its environment override), for redaction."""
    forge = config.engine.options().get("forge")
    token = forge.get("token") if isinstance(forge, dict) else None
    return str(token) if token else None
