"""The writer thread: group commit, one failure rolled back alone, and what a cancelled caller
gets. The thread is held inside an operation so the test decides what waits in the queue."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import trio
import trio.testing

from tamma_trio.errors import LeaseLostError, StoreError
from tamma_trio.models import TaskStatus
from tamma_trio.store import SqliteStore, sqlite_ops
from tamma_trio.store.sqlite_rows import Row, new_task_row, task_from_row, task_id_of
from tamma_trio.store.sqlite_runner import WriterThread
from tamma_trio.store.sqlite_schema import open_database

if TYPE_CHECKING:
    from tests.store_helpers import FakeWall, TaskBuilder


# --- group commit ---------------------------------------------------------------------------


class GatedWriter:
    """A WriterThread on a real store file whose thread the test can hold inside an operation."""

    def __init__(self, path: Path) -> None:
        self.runner = WriterThread(str(path))
        self.path = path
        self.gate = threading.Event()
        self.holding = trio.Event()

    async def start(self) -> None:
        await self.runner.start(functools.partial(open_database, self.path, "FULL"))

    async def hold(self, nursery: trio.Nursery) -> None:
        """Occupy the writer thread until ``gate`` is set; return once it is inside."""
        token = trio.lowlevel.current_trio_token()

        def wait_at_gate(_conn: sqlite3.Connection) -> None:
            trio.from_thread.run_sync(self.holding.set, trio_token=token)
            self.gate.wait()

        nursery.start_soon(functools.partial(self.runner.run, wait_at_gate))
        await self.holding.wait()


async def test_waiting_writes_share_one_transaction_and_fail_alone(
    tmp_path: Path, make_task: TaskBuilder, wall: FakeWall
) -> None:
    writer = GatedWriter(tmp_path / "tasks.db")
    await writer.start()
    outcomes: dict[str, object] = {}

    async def call(name: str, operation: Callable[[sqlite3.Connection], object]) -> None:
        try:
            outcomes[name] = await writer.runner.run(operation)
        except LeaseLostError as exc:
            outcomes[name] = exc

    async with trio.open_nursery() as nursery:
        await writer.hold(nursery)
        for n in range(1, 6):
            add = functools.partial(sqlite_ops.add_tasks, news=[new_task_row(make_task(n), wall())])
            nursery.start_soon(call, f"add{n}", add)

        def half_done(conn: sqlite3.Connection) -> None:
            [(row, _)] = sqlite_ops.add_tasks(conn, [new_task_row(make_task(99), wall())])
            sqlite_ops.complete(conn, task_id_of(row), "not-the-token", "{}", wall())

        nursery.start_soon(call, "bad", half_done)
        await trio.testing.wait_all_tasks_blocked()
        writer.gate.set()

    await writer.runner.aclose()
    assert (writer.runner.batches, writer.runner.operations) == (2, 7)
    assert isinstance(outcomes["bad"], LeaseLostError)
    async with SqliteStore(writer.path) as store:  # the failed operation's insert rolled back
        numbers = sorted(t.payload["issue"]["number"] for t in await store.list_tasks())
        assert numbers == [1, 2, 3, 4, 5]


async def test_a_cancelled_caller_still_receives_its_committed_claim(
    tmp_path: Path, make_task: TaskBuilder, wall: FakeWall
) -> None:
    writer = GatedWriter(tmp_path / "tasks.db")
    await writer.start()
    await writer.runner.run(
        functools.partial(sqlite_ops.add_tasks, news=[new_task_row(make_task(), wall())])
    )
    received: list[list[Row]] = []
    after_checkpoint: list[bool] = []
    scope = trio.CancelScope()

    async def poller() -> None:
        with scope:
            claim = functools.partial(
                sqlite_ops.claim, now=wall(), limit=1, lease_expires=wall() + 60, boot_id="b"
            )
            received.append(await writer.runner.run(claim))
            await trio.lowlevel.checkpoint()
            after_checkpoint.append(True)

    async with trio.open_nursery() as nursery:
        await writer.hold(nursery)
        nursery.start_soon(poller)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
        writer.gate.set()

    assert scope.cancelled_caught and after_checkpoint == []
    [[row]] = received
    assert task_from_row(row).status == "in_progress"  # handed over, not lost till a restart

    with trio.CancelScope() as already:
        already.cancel()
        add = functools.partial(sqlite_ops.add_tasks, news=[new_task_row(make_task(2), wall())])
        await writer.runner.run(add)
    assert already.cancelled_caught
    await writer.runner.aclose()
    async with SqliteStore(writer.path) as store:
        assert (await store.stats()).by_status[TaskStatus.QUEUED] == 0  # the add never ran


async def test_close_runs_every_queued_write_first(tmp_path: Path, make_task: TaskBuilder) -> None:
    path = tmp_path / "tasks.db"
    async with SqliteStore(path) as store, trio.open_nursery() as nursery:
        for n in range(1, 21):
            nursery.start_soon(store.add, make_task(n))
        await trio.testing.wait_all_tasks_blocked()
        await store.aclose()  # while the 20 adds wait in its queue

    async with SqliteStore(path) as reopened:
        assert (await reopened.stats()).queue_depth == 20


async def test_an_error_outside_any_operation_fails_its_batch_and_the_writer_goes_on(
    tmp_path: Path, make_task: TaskBuilder, wall: FakeWall
) -> None:
    writer = GatedWriter(tmp_path / "tasks.db")
    await writer.start()
    failures: list[BaseException] = []

    def breaks_the_savepoint(conn: sqlite3.Connection) -> None:
        conn.execute("RELEASE operation")  # the runner's own RELEASE now fails

    async def call(operation: Callable[[sqlite3.Connection], object]) -> None:
        try:
            await writer.runner.run(operation)
        except StoreError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        await writer.hold(nursery)
        nursery.start_soon(call, breaks_the_savepoint)
        add = functools.partial(sqlite_ops.add_tasks, news=[new_task_row(make_task(1), wall())])
        nursery.start_soon(call, add)
        await trio.testing.wait_all_tasks_blocked()
        writer.gate.set()

    assert len(failures) == 2 and "no such savepoint" in str(failures[0])
    add = functools.partial(sqlite_ops.add_tasks, news=[new_task_row(make_task(2), wall())])
    [(row, created)] = await writer.runner.run(add)
    task = task_from_row(row)
    assert created and (task.id, task.payload["issue"]["number"]) == (1, 2)  # 1: rolled back
    await writer.runner.aclose()
