"""The `tamma-trio` command line: main(argv) -> exit code.

Each command group lives in its own module and is registered below; only this package and
service.py know every part of the daemon.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from tamma_trio.cli.common import EXIT_FAILURE, EXIT_USAGE
from tamma_trio.errors import TammaError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tamma-trio")
def cli() -> None:
    """tamma-trio: turn development events into autonomous workflows."""


def _register() -> None:
    """Attach the command groups; imported here so `--help` lists them all."""
    from tamma_trio.cli import aws, config_cmd, events_cmd, notify_cmd, serve, tasks

    for module in (config_cmd, tasks, serve, aws, events_cmd, notify_cmd):
        cli.add_command(module.command)
    from tamma_trio.cli.housekeeping import db, prune

    tasks.command.add_command(prune)
    cli.add_command(db)
    from tamma_trio.cli.forge import commands as forge_commands  # forge init, issues, prs

    for group in forge_commands:
        cli.add_command(group)
    from tamma_trio.cli.deliveries import command as deliveries
    from tamma_trio.cli.deliveries import comment
    from tamma_trio.cli.forge import issues

    cli.add_command(deliveries)
    issues.add_command(comment)  # `issues comment`: the local forge's comments as deliveries


_register()


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
