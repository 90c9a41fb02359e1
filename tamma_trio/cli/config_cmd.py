"""`tamma-trio config check`: validate a config and show what the daemon would run with.

Printing the *effective* config (file + environment + defaults) answers the usual question
"which value won?", and masking secrets makes the output safe to paste into an issue.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from tamma_trio.cli.aws import queue_problems
from tamma_trio.cli.common import EXIT_OK, EXIT_USAGE, config_option, report_config_error
from tamma_trio.config import Config, load_config, mask_secrets, resolve_config_path
from tamma_trio.errors import ConfigError

command = click.Group("config", help="Inspect the configuration.")


@command.command("check")
@config_option
def check(config_path: Path | None) -> int:
    """Print the effective config (secrets masked), or every invalid key; then run the
    pre-flight checks `serve` runs (agent, tests, origin, workspace); exit 2 if any fails."""
    try:
        config = load_config(config_path)
        check_engine_options(config)
    except ConfigError as exc:
        report_config_error(exc)
        return EXIT_USAGE
    problems = queue_problems(config)
    if problems:
        name = config.service.queue.sqs.queue_name
        click.echo(f"error: the SQS queue {name!r} is not ready to serve", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        return EXIT_USAGE
    source = resolve_config_path(config_path, os.environ)
    click.echo(f"# effective configuration (from {source or 'built-in defaults'})")
    # Engine options are a free table: mask what looks secret there and everywhere else.
    click.echo(to_toml(mask_secrets(config.model_dump(mode="json"))), nl=False)
    for warning in webhook_warnings(config):
        click.echo(f"# warning: {warning}")
    from tamma_trio.cli.startup import preflight_problems

    problems = preflight_problems(config)
    for problem in problems:
        click.echo(f"error: pre-flight: {problem}", err=True)
    return EXIT_USAGE if problems else EXIT_OK


def webhook_warnings(config: Config) -> list[str]:
    """Say which webhook routes refuse everything, so a silent 401 is never a surprise."""
    warnings = []
    if not config.webhooks.github.secrets:
        warnings.append(
            "[webhooks.github] secrets is empty: every GitHub delivery is refused (401)"
        )
    if not config.webhooks.gitlab.tokens:
        warnings.append("[webhooks.gitlab] tokens is empty: every GitLab delivery is refused (401)")
    return warnings


def check_engine_options(config: Config) -> None:
    """Validate the workflow engine's table too, so `config check` catches its typos."""
    if config.engine.name == "workflow":
        from tamma_trio.engine.workflow_options import parse_options

        parse_options(config.engine.options())


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Render nested dicts as TOML: plain keys first, then one [table] per nested dict."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in data.items() if _is_plain(value)]
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            text += f"\n[{name}]\n" + to_toml(value, name)
        elif _is_table_array(value):
            text += "".join(f"\n[[{name}]]\n" + to_toml(item, name) for item in value)
    return text


def _is_plain(value: Any) -> bool:
    return value is not None and not isinstance(value, dict) and not _is_table_array(value)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and isinstance(value[0], dict)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value))
