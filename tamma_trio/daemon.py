"""`tamma-trio serve` as a process: signals, the store's lock and files, and the Service inside.

Kept apart from service.py, which wires the daemon's parts, because this part is about the
host: which signals stop it (SIGHUP drains like SIGTERM), what a failed start must not leave
behind, what earlier runs left (stray agent processes), and the line scripts parse.
"""

from __future__ import annotations

import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import trio

from tamma_trio.config import Config
from tamma_trio.engine.loader import open_engine
from tamma_trio.service import Service, trio_wall_clock
from tamma_trio.start_guard import (
    STOP_SIGNALS,
    NewFiles,
    StartupSignals,
    check_exposure,
    local_forge_files,
    store_files,
    sweep_strays,
)
from tamma_trio.status import ServiceState
from tamma_trio.store import open_store
from tamma_trio.systemd import Notifier, report

# The lines serve has always written under the service logger keep that name (log filters).
log = logging.getLogger("tamma_trio.service")

EXIT_OK = 0
EXIT_HARD_STOP = 1


async def serve(
    config: Config,
    *,
    announce: Callable[[str], None],
    early: StartupSignals | None = None,
    notifier: Notifier | None = None,
) -> int:
    """Run the daemon until SIGTERM, SIGINT or SIGHUP: 0 after a clean drain (or a signal
    before it started), 1 after a second signal.

    Raises ConfigError for an engine or an exposure the config should not allow, before any
    file exists; StoreLockedError when another daemon holds the SQLite file (a shared store,
    Redis, has no such lock: several daemons are its point). A start that fails removes the
    store files it created. ``announce`` receives the one stable line with the bound URLs (see
    ``listening_line``); ``early`` holds a signal that came before trio's receiver.
    """
    check_exposure(config)
    wall = trio_wall_clock()
    # Opened first, so a signal that arrives during start-up is queued, not fatal.
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        if early is not None and early.received is not None:
            log.info("%s received while starting: exiting", signal.Signals(early.received).name)
            return EXIT_OK
        store = open_store(
            config.service.queue, clock=wall, lease_seconds=config.service.lease_duration
        )
        service = Service(  # builds the engine, so bad engine options stop us before any file
            config,
            store,
            lambda context: open_engine(config.engine, context),
            wall=wall,
            database_path=database_path(config),
        )
        database = database_path(config)
        new_files = NewFiles(store_files(database) + local_forge_files(config, database))
        started = False

        def listening(line: str) -> None:
            nonlocal started
            started = True
            announce(line)

        if store.single_daemon:
            store.lock_for_daemon()
        swept = sweep_strays()
        if swept:
            log.warning("killed %d process(es) left by runs of a daemon that died", len(swept))
        try:
            async with store:
                return await _serve_until_signalled(service, signals, listening, notifier)
        except BaseException:
            if not started:  # closed by now: the files can go
                new_files.remove()
            raise


async def _serve_until_signalled(
    service: Service,
    signals: AsyncIterator[int],
    announce: Callable[[str], None],
    notifier: Notifier | None = None,
) -> int:
    hard_stop = False
    async with trio.open_nursery() as nursery:

        async def watch_signals() -> None:
            nonlocal hard_stop
            seen = 0
            async for signum in signals:
                seen += 1
                name = signal.Signals(signum).name
                if seen == 1:
                    log.info("%s received: draining (a second signal stops at once)", name)
                    service.request_shutdown()
                else:
                    log.warning("%s received again: stopping now", name)
                    hard_stop = True
                    nursery.cancel_scope.cancel()

        nursery.start_soon(watch_signals)
        urls = await nursery.start(service.run)
        # Everything allocated so far (modules, schemas, the app) lives as long as the daemon:
        # moved out of the collector's reach, full collections stop scanning it, so their pauses
        # no longer stretch /health's tail latency under load (bench/throughput.py shows it).
        gc.freeze()
        announce(listening_line(urls))  # the caller logs it, in its start-up block
        if notifier is not None:
            nursery.start_soon(report, notifier, service.status, service.state)
        await service.state.wait_value(ServiceState.STOPPED)
        nursery.cancel_scope.cancel()
    log.info(
        "stopped: %d completed, %d interrupted",
        service.status.completed,
        service.status.interrupted,
    )
    return EXIT_HARD_STOP if hard_stop else EXIT_OK


def listening_line(urls: dict[str, str]) -> str:
    """``listening health=http://127.0.0.1:8080 metrics=http://127.0.0.1:9090``: a stable
    line that scripts and tests parse to find the ports (0 in config means "any free port")."""
    if not urls:
        return "listening (no HTTP server enabled)"
    return "listening " + " ".join(f"{name}={url}" for name, url in sorted(urls.items()))


def database_path(config: Config) -> Path | None:
    """The task store's SQLite file; the local forge keeps its own file beside it."""
    queue = config.service.queue
    return queue.sqlite.path if queue.type == "sqlite" else None
