"""Reads on connections of their own, in threads of their own, beside the writer thread.

In WAL mode a reader sees the last committed snapshot and never waits for the writer, so a read
(``tasks list``, ``/api/tasks``, the status snapshot behind /health and /ready) must not queue
behind a batch of writes in the writer thread: it goes to one of these threads instead. Each
read runs in its own read transaction, so a query of several statements sees one snapshot, and
a read that starts after a write was acknowledged sees that write.

The threads take reads from one queue; a caller is woken through its trio token with its own
outcome, and, as with the writer, a queued read is not taken back on cancellation.
"""

from __future__ import annotations

import queue
import threading
from typing import TypeVar, cast

import outcome
import trio

from tamma_trio.errors import StoreError
from tamma_trio.store.sqlite_runner import Job, Opener, Operation, deliver, keep_waiting, run_batch

T = TypeVar("T")

# Two, so one long listing does not hold up the status snapshot behind /ready.
READERS = 2


class ReaderThreads:
    """``count`` threads, each owning one read-only connection (see the module docstring)."""

    def __init__(self, where: str, count: int = READERS) -> None:
        self._where = where
        self._count = count
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []  # touched only on the trio thread

    async def start(self, opener: Opener) -> None:
        """Open every reader's connection; the first opener error is raised here."""
        if self._threads:
            raise StoreError(f"the task store {self._where} is already open")
        for number in range(self._count):
            started = Job(_nothing, write=False)
            thread = threading.Thread(
                target=self._main,
                args=(opener, started),
                name=f"tamma-sqlite-reader-{number}",
                daemon=True,
            )
            thread.start()
            await trio.lowlevel.wait_task_rescheduled(keep_waiting)
            self._threads.append(thread)

    async def run(self, operation: Operation[T]) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._threads:
            raise StoreError(f"the task store {self._where} is not open")
        self._jobs.put(Job(operation, write=False))
        return cast(T, await trio.lowlevel.wait_task_rescheduled(keep_waiting))

    async def aclose(self) -> None:
        """Let each thread finish the reads queued before, close its connection and end."""
        while self._threads:
            self._jobs.put(Job(_nothing, write=False, closes=True))
            # Whichever thread takes the closer answers with itself, then returns.
            ended = await trio.lowlevel.wait_task_rescheduled(keep_waiting)
            ended.join()
            self._threads.remove(ended)

    def _main(self, opener: Opener, started: Job) -> None:
        try:
            conn = opener()
        except BaseException as exc:
            started.outcome = outcome.Error(exc)
            deliver([started])
            return
        started.outcome = outcome.Value(None)
        deliver([started])
        while True:
            job = self._jobs.get()
            if job.closes:
                conn.close()
                job.outcome = outcome.Value(threading.current_thread())
                deliver([job])
                return
            run_batch(conn, [job], self._where)
            deliver([job])


def _nothing(_conn: object) -> None:
    return None
