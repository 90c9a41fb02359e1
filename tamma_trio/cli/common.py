"""What every CLI command shares: the --config option, config loading and error reporting.

Bad input is one clear line on stderr and exit code 2 (click's own convention for usage errors),
so scripts can tell "you asked for something wrong" from "the daemon failed".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from tamma_trio.config import Config, load_config
from tamma_trio.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def config_option(command: F) -> F:
    """Add ``--config PATH`` (else TAMMA_CONFIG, else ./tamma.toml, else defaults)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Config file (default: $TAMMA_CONFIG, else ./tamma.toml if present).",
    )(command)


def load_or_exit(config_path: Path | None) -> Config:
    """The effective config, or every problem printed to stderr and exit 2."""
    try:
        return load_config(config_path)
    except ConfigError as exc:
        report_config_error(exc)
        raise SystemExit(EXIT_USAGE) from None


def report_config_error(exc: ConfigError) -> None:
    click.echo(f"error: {exc}", err=True)
    for where, value, allowed in exc.problems:
        click.echo(f"  {where} = {value}: {allowed}", err=True)


def fail_usage(message: str) -> NoReturn:
    """One line on stderr, exit 2: the caller asked for something that cannot be."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_USAGE)


# SQLite's INTEGER is signed 64-bit: no task or issue can have a larger number.
MAX_ROW_ID = 2**63 - 1


class RowIdType(click.ParamType[int]):
    """A task id or an issue number: 1 to 2**63-1; anything else is one line and exit 2."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        what = param.human_readable_name if param is not None else "id"
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_ROW_ID:
            shown = text if len(text) <= 30 else text[:27] + "..."
            fail_usage(f"{what} must be a whole number from 1 to {MAX_ROW_ID}, got {shown!r}")
        return int(text)


ROW_ID = RowIdType()


def with_config(command: F) -> F:
    """Decorate a command taking ``config: Config`` with --config and loading."""

    @config_option
    @functools.wraps(command)
    def wrapper(*args: Any, config_path: Path | None, **kwargs: Any) -> Any:
        return command(*args, config=load_or_exit(config_path), **kwargs)

    return wrapper  # type: ignore[return-value]
