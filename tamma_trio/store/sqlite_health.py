"""How the SQLite store knows its writes are failing, and how long a write may wait.

A full disk or a database another process keeps locked leaves reads working: ``SELECT 1``
answers, so a ping alone would keep /ready at 200 while every write fails. ``WriteHealth`` notes
each batch's outcome on the runner's thread, and the store's ping raises while writes have been
failing, so the daemon reports itself not ready with the reason.

``BusyBudget`` keeps a request's total wait within one busy timeout: an operation that queued
behind a batch stuck on the lock only gets what is left of its own timeout, not a fresh one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import outcome

from tamma_trio.errors import StoreError

# After the last failed write, /ready stays 503 this long unless a write succeeds sooner: with
# nothing to write, nobody would otherwise learn that the disk has room again.
FAILURE_HOLD = 30.0

# A busy-timeout budget that moved by less than this is close enough to leave as it is.
_SLACK_MS = 10


class Job(Protocol):
    write: bool
    queued_at: float
    outcome: outcome.Outcome[Any] | None


J = TypeVar("J", bound=Job)


class WriteHealth:
    """Written by the runner after each batch, read by ``ping`` on the trio thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.error: str | None = None
        self.failed_at = 0.0

    def after_batch(self, jobs: Sequence[Job], changed: bool) -> None:
        failure = next((_store_error(job) for job in jobs if _store_error(job)), None)
        if failure is not None:
            self.error, self.failed_at = failure, self._clock()
        elif changed:
            self.error = None

    def check(self) -> None:
        """StoreError while writes have been failing (see FAILURE_HOLD)."""
        error = self.error
        if error is not None and self._clock() - self.failed_at < FAILURE_HOLD:
            raise StoreError(f"writes are failing: {error}")


def _store_error(job: Job) -> str | None:
    result = job.outcome
    if job.write and isinstance(result, outcome.Error) and isinstance(result.error, StoreError):
        return str(result.error)
    return None


class BusyBudget:
    """Splits a batch into jobs whose busy timeout is spent and the rest, and sets the
    connection's busy timeout to what the oldest remaining job has left."""

    def __init__(self, busy_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.busy_timeout = busy_timeout
        self._clock = clock
        self._set_ms = round(busy_timeout * 1000)

    def admit(self, conn: sqlite3.Connection, jobs: Sequence[J], where: str) -> list[J]:
        now = self._clock()
        live = []
        for job in jobs:
            if now - job.queued_at < self.busy_timeout:
                live.append(job)
            else:
                job.outcome = outcome.Error(
                    StoreError(
                        f"task store {where}: busy for {self.busy_timeout:g} s "
                        "(locked by another process, or the disk is slow)"
                    )
                )
        if live:
            oldest = min(job.queued_at for job in live)
            self._set(conn, round((self.busy_timeout - (now - oldest)) * 1000))
        return live

    def _set(self, conn: sqlite3.Connection, ms: int) -> None:
        """PRAGMA only when the budget moved by more than ``_SLACK_MS``: each batch would otherwise
        pay for one."""
        ms = max(ms, 1)
        if abs(ms - self._set_ms) > _SLACK_MS:
            conn.execute(f"PRAGMA busy_timeout = {ms}")
            self._set_ms = ms
