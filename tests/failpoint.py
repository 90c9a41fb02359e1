"""Run the tamma-trio CLI with a signal fired at a chosen point of the daemon's life.

    python -m tests.failpoint [--full-db] [POINT SIGNAL] ARGS...
    e.g.  python -m tests.failpoint claimed KILL serve --config x

With ``--full-db`` the store's file cannot grow from the first write on (a full disk, through
tests.faults.DiskLimit) until the process gets SIGUSR1.

The process sends SIGNAL (KILL, TERM, HUP, INT) to itself the first time it passes POINT, so a
test can kill -9 the daemon between a claim and its start, after the engine's work but before
its completion is written, or stop it half-way through start-up, reproducibly. Part of the
fault kit; the points patch real functions and add no hook to tamma_trio itself.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

# point -> (module, attribute path, "before" | "after" | "after_some": after a non-empty result)
POINTS: dict[str, tuple[str, str, str]] = {
    "config_loaded": ("tamma_trio.cli.serve", "load_or_exit", "after"),
    "store_opened": ("tamma_trio.store.sqlite", "SqliteStore._open", "after"),
    "engine_initialized": ("tests.fake_engine", "FakeEngine._open", "after"),
    "claimed": ("tamma_trio.store.sqlite", "SqliteStore.claim", "after_some"),
    "before_complete": ("tamma_trio.store.sqlite", "SqliteStore.complete", "before"),
    "after_complete": ("tamma_trio.store.sqlite", "SqliteStore.complete", "after"),
}


class _Trigger:
    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.fired = False

    def fire(self) -> None:
        if not self.fired:
            self.fired = True
            os.kill(os.getpid(), self.signum)


def _wrap(target: Callable[..., Any], when: str, trigger: _Trigger) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(target):

        @functools.wraps(target)
        async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
            if when == "before":
                trigger.fire()
            result = await target(*args, **kwargs)
            if when == "after" or (when == "after_some" and result):
                trigger.fire()
            return result

        return wrapped_async

    @functools.wraps(target)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if when == "before":
            trigger.fire()
        result = target(*args, **kwargs)
        if when == "after" or (when == "after_some" and result):
            trigger.fire()
        return result

    return wrapped


def arm(point: str, signal_name: str) -> None:
    """Patch POINT so that the process gets SIGNAL there (once)."""
    module_name, path, when = POINTS[point]
    owner: Any = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    trigger = _Trigger(signal.Signals[f"SIG{signal_name}"])
    setattr(owner, name, _wrap(getattr(owner, name), when, trigger))


def main(argv: list[str]) -> int:
    args = list(argv)
    if args and args[0] == "--full-db":
        args = args[1:]
        _fill_until_sigusr1()
    if args and args[0] in POINTS:
        arm(args[0], args[1])
        args = args[2:]
    from tamma_trio.cli import main as cli_main

    return cli_main(args)


def _fill_until_sigusr1() -> None:
    from tests.faults import DiskLimit

    limit = DiskLimit().install()
    limit.fill()
    # trio's signal receiver only watches the stop signals, so this handler stays in place.
    signal.signal(signal.SIGUSR1, lambda _signum, _frame: limit.free())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
