"""Where the SQLite connection lives and how trio reaches it, with group commit.

``WriterThread`` (production): one OS thread owns the connection. A caller puts its operation on
a queue and sleeps. The thread takes every operation waiting (up to MAX_BATCH), runs them in ONE
transaction with one SAVEPOINT each, so a failing operation rolls back only itself and gets its
own error, commits once (one fsync for the whole batch under synchronous=FULL), then wakes every
caller with its own outcome through the caller's trio token. Twenty workers completing at once
therefore cost one fsync, not twenty.

Cancellation: a caller that is already cancelled when it calls queues nothing and gets
Cancelled. Once queued, an operation runs and its caller always receives the outcome; Cancelled
arrives at the caller's next checkpoint, as with ``to_thread.run_sync(abandon_on_cancel=False)``.
That is what claim needs: a committed claim always reaches the poller,
which can start the task's worker without a checkpoint in between, instead of leaving the task
in_progress until the next restart. The price: a cancelled caller may wait out the batch it is
in (milliseconds; at most the busy timeout while another process holds the write lock).

The queue is bounded for intake: an add beyond MAX_QUEUED_WRITES waiting is refused before it
is queued (StoreBusyError), so nothing is half-stored, and the doors answer 503. The daemon's
own writes (claims, completions) are bounded by its worker slots and always queue. Reads do not
wait here at all: they run on their own connections (sqlite_readers.py).

``InlineRunner`` (MockClock tests): the same transactions, one per call, on the trio thread.
A thread would let MockClock's autojump skip virtual time while SQL runs, firing timers early.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

import outcome
import trio

from tamma_trio.errors import StoreBusyError, StoreError
from tamma_trio.store.sqlite_health import BusyBudget, WriteHealth

P = ParamSpec("P")
T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]
Opener = Callable[[], sqlite3.Connection]

# Bounds one transaction's latency for the callers at the back of a long queue.
MAX_BATCH = 256
# Intake writes waiting beyond this are refused (StoreBusyError) instead of queued, so a flood
# of webhooks or API calls cannot grow memory without limit; a few batches' worth.
MAX_QUEUED_WRITES = 4 * MAX_BATCH


class Runner(Protocol):
    """Runs operations on the store's one connection, each inside a transaction."""

    # Transactions run and operations in them: operations / batches is the group-commit factor.
    batches: int
    operations: int
    health: WriteHealth

    async def start(self, opener: Opener) -> None: ...

    async def run(self, operation: Operation[T], *, write: bool = True, bounded: bool = False) -> T:
        """Run ``operation``; a ``bounded`` one (intake) is refused while the queue is full."""

    async def aclose(self) -> None: ...


class Job:
    """One queued operation and the trio task waiting for its outcome."""

    __slots__ = ("closes", "operation", "outcome", "queued_at", "task", "trio_token", "write")

    def __init__(self, operation: Operation[Any], write: bool, closes: bool = False) -> None:
        self.queued_at = time.monotonic()
        self.operation = operation
        self.write = write
        self.closes = closes
        self.task = trio.lowlevel.current_task()
        self.trio_token = trio.lowlevel.current_trio_token()
        self.outcome: outcome.Outcome[Any] | None = None


def run_batch(conn: sqlite3.Connection, jobs: Sequence[Job], where: str) -> None:
    """Run ``jobs`` in one transaction and set each job's outcome."""
    try:
        conn.execute("BEGIN IMMEDIATE" if any(job.write for job in jobs) else "BEGIN")
    except sqlite3.Error as exc:
        _fail_all(jobs, f"task store {where}: {exc}", exc)
        return
    use_savepoints = len(jobs) > 1
    for job in jobs:
        job.outcome = _run_one(conn, job.operation, use_savepoints, where)
        if not conn.in_transaction:
            # SQLite itself abandoned the transaction (disk full, I/O error): nothing stuck.
            _fail_all(jobs, f"task store {where}: SQLite rolled back the batch")
            return
    if all(isinstance(job.outcome, outcome.Error) for job in jobs):
        _rollback(conn)
        return
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(conn)
        _fail_all(jobs, f"task store {where}: {exc}", exc)


def _run_one(
    conn: sqlite3.Connection, operation: Operation[Any], savepoint: bool, where: str
) -> outcome.Outcome[Any]:
    if savepoint:
        conn.execute("SAVEPOINT operation")
    try:
        value = operation(conn)
    except Exception as exc:
        if savepoint and conn.in_transaction:
            conn.execute("ROLLBACK TO operation")
            conn.execute("RELEASE operation")
        return outcome.Error(_as_store_error(exc, where))
    if savepoint:
        conn.execute("RELEASE operation")
    return outcome.Value(value)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _fail_all(jobs: Sequence[Job], message: str, cause: BaseException | None = None) -> None:
    """One StoreError per caller: each raise grows its own traceback."""
    for job in jobs:
        error = StoreError(message)
        error.__cause__ = cause
        job.outcome = outcome.Error(error)


def _as_store_error(exc: Exception, where: str) -> Exception:
    """SQLite's own errors become StoreError naming the file; our TammaErrors pass through."""
    if isinstance(exc, sqlite3.Error):
        error = StoreError(f"task store {where}: {exc}")
        error.__cause__ = exc
        return error
    return exc


def keep_waiting(_raise_cancel: Any) -> trio.lowlevel.Abort:
    """A queued operation cannot be taken back: its outcome is delivered, then Cancelled."""
    return trio.lowlevel.Abort.FAILED


def deliver(jobs: Sequence[Job]) -> None:
    """From the writer thread: wake each job's trio task with its outcome (one wakeup per run)."""
    by_token: dict[trio.lowlevel.TrioToken, list[Job]] = {}
    for job in jobs:
        by_token.setdefault(job.trio_token, []).append(job)
    for token, group in by_token.items():
        # RunFinishedError: the trio run that asked is gone, so nobody is waiting.
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(_wake, group)


def _wake(jobs: list[Job]) -> None:
    for job in jobs:
        assert job.outcome is not None  # set by the writer before delivering
        trio.lowlevel.reschedule(job.task, job.outcome)


class WriterThread:
    """Group-commit runner (see the module docstring)."""

    def __init__(
        self, where: str, busy_timeout: float = 5.0, max_queued: int = MAX_QUEUED_WRITES
    ) -> None:
        self._where = where
        self.max_queued = max_queued
        self._budget = BusyBudget(busy_timeout)
        self.health = WriteHealth()
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        # Only the trio thread touches these two: no thread means closed.
        self._thread: threading.Thread | None = None
        self._closing = False
        self.batches = 0
        self.operations = 0

    async def start(self, opener: Opener) -> None:
        """Open the connection on a new writer thread; the opener's error is raised here."""
        if self._thread is not None:
            raise StoreError(f"the task store {self._where} is already open")
        started = Job(nothing, write=False)
        self._thread = threading.Thread(
            target=self._main, args=(opener, started), name="tamma-sqlite-writer", daemon=True
        )
        self._thread.start()
        try:
            await trio.lowlevel.wait_task_rescheduled(keep_waiting)
        except BaseException:
            self._thread = None  # it reported why it could not open and has ended
            raise

    async def run(self, operation: Operation[T], *, write: bool = True, bounded: bool = False) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._thread is None or self._closing:
            raise StoreError(f"the task store {self._where} is not open")
        if bounded and self._jobs.qsize() >= self.max_queued:
            raise StoreBusyError(
                f"the task store {self._where} has {self.max_queued} writes waiting;"
                " nothing was stored, try again shortly"
            )
        self._jobs.put(Job(operation, write))
        return cast(T, await trio.lowlevel.wait_task_rescheduled(keep_waiting))

    async def aclose(self) -> None:
        """Run what is queued, close the connection, end the thread."""
        if self._thread is None or self._closing:
            return
        self._closing = True
        self._jobs.put(Job(nothing, write=False, closes=True))
        try:
            await trio.lowlevel.wait_task_rescheduled(keep_waiting)
        finally:
            self._thread.join()  # it has delivered its last outcome and is returning
            self._thread = None
            self._closing = False

    def _main(self, opener: Opener, started: Job) -> None:
        try:
            conn = opener()
        except BaseException as exc:
            started.outcome = outcome.Error(exc)
            deliver([started])
            return
        started.outcome = outcome.Value(None)
        deliver([started])
        self._serve(conn)

    def _serve(self, conn: sqlite3.Connection) -> None:
        while True:
            batch = self._take_batch()
            work = [job for job in batch if not job.closes]
            try:
                live = self._budget.admit(conn, work, self._where)
                if live:
                    before = conn.total_changes
                    run_batch(conn, live, self._where)
                    self.batches += 1
                    self.operations += len(live)
                    self.health.after_batch(live, conn.total_changes > before)
            except Exception as exc:  # outside any operation: fail this batch, keep serving
                with contextlib.suppress(sqlite3.Error):
                    _rollback(conn)
                _fail_all(work, f"task store {self._where}: {exc!r}", exc)
            closers = [job for job in batch if job.closes]
            if closers:
                conn.close()
                for job in closers:
                    job.outcome = outcome.Value(None)
            deliver(batch)
            if closers:
                return

    def _take_batch(self) -> list[Job]:
        batch = [self._jobs.get()]
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._jobs.get_nowait())
            except queue.Empty:
                break
        return batch


class InlineRunner:
    """Each operation in its own transaction on the trio thread (see the module docstring)."""

    def __init__(self, where: str) -> None:
        self._where = where
        self.health = WriteHealth()
        self._conn: sqlite3.Connection | None = None
        self.batches = 0
        self.operations = 0

    async def start(self, opener: Opener) -> None:
        await trio.lowlevel.checkpoint()
        if self._conn is not None:
            raise StoreError(f"the task store {self._where} is already open")
        self._conn = opener()

    async def run(self, operation: Operation[T], *, write: bool = True, bounded: bool = False) -> T:
        await trio.lowlevel.checkpoint()
        if self._conn is None:
            raise StoreError(f"the task store {self._where} is not open")
        job = Job(operation, write)
        before = self._conn.total_changes
        run_batch(self._conn, [job], self._where)
        self.health.after_batch([job], self._conn.total_changes > before)
        self.batches += 1
        self.operations += 1
        assert job.outcome is not None
        return cast(T, job.outcome.unwrap())

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def nothing(_conn: sqlite3.Connection) -> None:
    return None


def bind(
    function: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
) -> Callable[[sqlite3.Connection], T]:
    """``function`` waiting only for the connection, which the runner supplies on its thread."""

    def operation(conn: sqlite3.Connection) -> T:
        return function(conn, *args, **kwargs)

    return operation
