"""What `serve` checks and remembers before the daemon runs, so a start that fails or is stopped
early leaves the host as it found it.

- ``check_exposure``: the API reads and changes tasks; bound beyond loopback without a token it
  would answer anyone (behind a reverse proxy every client even looks like loopback), so that
  needs ``[service.api] allow_unauthenticated = true``.
- ``NewFiles``: the store files a start is about to create; a start that fails removes them, so
  a typo in the config does not leave an empty database and a lock file behind.
- ``sweep_strays``: processes that agent or test runs of a daemon killed with -9 left behind
  are killed before this daemon starts its own.
- ``StartupSignals``: a stop signal that arrives before trio's receiver is open (config loading,
  imports) is remembered instead of killing the process with 143; the daemon then exits 0.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
from pathlib import Path
from types import FrameType

from tamma_trio.config import Config
from tamma_trio.engine.strays import kill_leftovers
from tamma_trio.engine.workflow_options import LocalForgeOptions, parse_options
from tamma_trio.errors import ConfigError

# SIGHUP drains like SIGTERM: nothing in the config can be swapped safely under running tasks,
# and a hang-up (a closed terminal, a stray `kill -HUP`) must not kill running work without a
# drain.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the name localhost; a wildcard or any other name is not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(config: Config) -> None:
    """ConfigError when the HTTP servers would serve the API beyond loopback with no token."""
    svc = config.service
    serving = svc.health_check.enabled or svc.metrics.enabled
    host = svc.health_check.host
    if not serving or is_loopback_host(host) or svc.api.token is not None:
        return
    if svc.api.allow_unauthenticated:
        return
    raise ConfigError(
        f"service.health_check.host = {host!r} serves the tasks API beyond loopback without a "
        "token; set [service.api] token, or allow_unauthenticated = true if a proxy in front "
        "checks every caller"
    )


class NewFiles:
    """The files of ``paths`` that do not exist yet; ``remove`` deletes those that appeared."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = [path for path in paths if not os.path.lexists(path)]

    def remove(self) -> None:
        for path in self.paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def store_files(database: Path | None) -> list[Path]:
    """A SQLite store's file, its WAL and shared-memory files and the daemon's lock file."""
    if database is None:
        return []
    real = os.path.realpath(database)
    return [database, Path(f"{real}-wal"), Path(f"{real}-shm"), Path(f"{real}.lock")]


def local_forge_files(config: Config, database: Path | None) -> list[Path]:
    """The local forge's own SQLite file and its WAL files, which opening the workflow engine
    creates beside the task store's (none for another engine or forge)."""
    if config.engine.name != "workflow":
        return []
    try:
        settings = parse_options(config.engine.options()).resolved(Path.cwd())
    except ConfigError:
        return []
    if not isinstance(settings.forge, LocalForgeOptions):
        return []
    forge = settings.forge_database(database)
    real = os.path.realpath(forge)
    return [forge, Path(f"{real}-wal"), Path(f"{real}-shm")]


def sweep_strays() -> list[int]:
    """Kill what runs of a dead daemon left behind; return the pids (for the log)."""
    return kill_leftovers()


class StartupSignals:
    """Notes the first stop signal until the daemon's own receiver takes over."""

    def __init__(self) -> None:
        self.received: int | None = None

    def install(self) -> StartupSignals:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._note)
        return self

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
