"""What `serve` says when it starts, and the pre-flight checks it (and `config check`) runs.

The start-up block answers an operator's first questions in one place: which version, which
config file and which environment overrides won, where the tasks are kept and how durably, which
engine, forge and agent will run, whether the API wants a token, and where it listens. It is
logged line by line (so `--log-format json` keeps every line JSON) after the servers are bound.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tamma_trio.config import Config, env_overrides, resolve_config_path


def tamma_version() -> str:
    try:
        return version("tamma-trio")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def startup_block(
    config: Config, config_path: Path | None, env: Mapping[str, str], listening: str
) -> list[str]:
    """The lines of the start-up block, in order; nothing in them is a secret."""
    source = resolve_config_path(config_path, env)
    overrides = env_overrides(env)
    svc = config.service
    return [
        f"tamma-trio {tamma_version()} (pid {os.getpid()})",
        f"config: {source or 'built-in defaults'}; environment overrides: "
        + (", ".join(overrides) or "none"),
        f"database: {_database(config)}",
        f"workers: {svc.max_concurrent_tasks}, poll every {svc.poll_interval:g} s, "
        f"drain deadline {svc.shutdown_timeout:g} s",
        *_engine_lines(config),
        "api: " + ("bearer token required for changes" if svc.api.token else _loopback_only()),
        listening,
    ]


def _loopback_only() -> str:
    return "no token set: changes accepted from loopback clients only"


def _database(config: Config) -> str:
    queue = config.service.queue
    if queue.type == "sqlite":
        path = queue.sqlite.path.resolve()
        return f"{path} (sqlite, WAL, synchronous={queue.sqlite.synchronous})"
    if queue.type == "memory":
        return "memory (tasks are lost when the daemon stops)"
    if queue.type == "redis":
        return f"redis (prefix {queue.redis.prefix!r})"  # the URL may hold a password
    return f"sqs (region {queue.sqs.region})"


def _engine_lines(config: Config) -> list[str]:
    name = config.engine.name
    if name != "workflow":
        return [f"engine: {name}"]
    from tamma_trio.engine.agent import expand_command
    from tamma_trio.engine.workflow_options import LocalForgeOptions, parse_options

    options = parse_options(config.engine.options()).resolved(Path.cwd())
    forge = options.forge
    if isinstance(forge, LocalForgeOptions):
        where = (
            f"forge: local, origin {forge.origin}, repository {forge.repository} "
            f"(branch {forge.default_branch}, trigger label {forge.trigger_label!r})"
        )
    else:
        auth = f"app {forge.app_id}" if forge.app_id else "token"
        where = (
            f"forge: github {forge.api_url} ({auth}), repositories "
            f"{', '.join(forge.repositories)} (trigger label {forge.trigger_label!r})"
        )
    return [
        f"engine: workflow; workspace {options.workspace_dir}",
        where,
        "agent: " + " ".join(expand_command(options.agent.command)),
        "tests: " + " ".join(options.tests.command),
    ]


def preflight_problems(config: Config) -> list[str]:
    """The engine's pre-flight problems (only the workflow engine has checks); ConfigError
    when its table is invalid."""
    if config.engine.name != "workflow":
        return []
    from tamma_trio.engine.preflight import preflight
    from tamma_trio.engine.workflow_options import parse_options

    return preflight(parse_options(config.engine.options()).resolved(Path.cwd()))
