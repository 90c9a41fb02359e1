"""The `tamma-trio` command line: main(argv) -> exit code.

Each command group lives in its own module, imported only when that command runs: `--help`
lists every command from the table below without loading pydantic, trio, rich or the engine,
and `tasks list` loads what listing needs and nothing of the daemon. Only this package and
service.py know every part of the daemon.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click

from tamma_trio.errors import TammaError

EXIT_FAILURE = 1
EXIT_USAGE = 2

SERVE_HELP = "Run the daemon: claim and run tasks, serve health, metrics and the tasks API."
TASKS_HELP = "Add, list, inspect, cancel, retry and prune tasks."

# name -> (module, attribute, one line of help for the command list); a test keeps the lines
# equal to each command's own help.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "aws": ("tamma_trio.cli.aws", "command", "Set up the Amazon SQS and DynamoDB backend."),
    "config": ("tamma_trio.cli.config_cmd", "command", "Inspect the configuration."),
    "db": ("tamma_trio.cli.housekeeping", "db", "The SQLite task store's file."),
    "forge": ("tamma_trio.cli.forge", "forge", "Set up the local forge (offline mode)."),
    "deliveries": ("tamma_trio.cli.deliveries", "command", "The webhook deliveries log."),
    "events": (
        "tamma_trio.cli.events_cmd",
        "command",
        "Print service events (started, stopped, task completed/failed/escalated, ...).",
    ),
    "issues": ("tamma_trio.cli", "issues_group", "Issues of the local forge."),
    "notify": (
        "tamma_trio.cli.notify_cmd",
        "command",
        "Inspect and retry outbound webhook deliveries.",
    ),
    "prs": ("tamma_trio.cli.forge", "prs", "Pull requests of the local forge."),
    "serve": ("tamma_trio.cli.serve", "command", SERVE_HELP),
    "tasks": ("tamma_trio.cli.tasks_view", "tasks_group", TASKS_HELP),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, listed from COMMANDS."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        found = getattr(importlib.import_module(module), attribute)
        command = found if isinstance(found, click.Command) else found()  # or a factory
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tamma-trio")
def cli() -> None:
    """tamma-trio: turn development events into autonomous workflows."""


def issues_group() -> click.Group:
    """The local forge's `issues` group with `issues comment` (which lives beside the webhook
    deliveries it creates)."""
    from tamma_trio.cli.deliveries import comment
    from tamma_trio.cli.forge import issues

    issues.add_command(comment)
    return issues


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting (tests call this)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="tamma-trio", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return EXIT_FAILURE
    except TammaError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_FAILURE
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
