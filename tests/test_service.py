"""The daemon's core under trio's MockClock: drain, restart, claiming, bounded workers, status.

Each test runs against a MemoryStore and an inline SQLite store (real SQL on the trio thread, so
autojump cannot skip time while a query runs). Times are virtual: a "40 s task" costs
milliseconds, and assertions on times are exact to the millisecond. pytest-trio only takes a
clock from the test's own arguments, so every test names ``autojump_clock``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from tamma_trio.models import NewTask, TaskStatus
from tamma_trio.service import Service, trio_wall_clock
from tamma_trio.status import ServiceState
from tamma_trio.store.base import TaskStore
from tests.service_helpers import (
    REPO,
    STORE_KINDS,
    Stores,
    called,
    event_kinds,
    fake,
    issue_task,
    make_config,
    pr_task,
    running,
    status_is,
    wait_for,
    zero,
)


@pytest.fixture(params=STORE_KINDS)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    stores = Stores(request.param, tmp_path / "tasks.db", trio_wall_clock())
    yield stores
    await stores.close()


@pytest.fixture
async def store(stores: Stores) -> TaskStore:
    return await stores.open()


# --- drain ----------------------------------------------------------------------------------


async def test_drain_waits_for_a_20_s_task(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(delays={"monitor_pr": 20})
    async with running(stores, store, engine) as daemon:
        task = await daemon.enqueue(pr_task())
        await engine.entered.wait_value(1)
        stop_at = trio.current_time()
        daemon.request_shutdown()
        assert daemon.status.state is ServiceState.DRAINING
        late = await daemon.enqueue(pr_task(13))  # intake still stores, nothing claims it
        await daemon.state.wait_value(ServiceState.STOPPED)
        assert trio.current_time() - stop_at == pytest.approx(20, abs=0.01)
    assert (await store.get(task.id)).status is TaskStatus.COMPLETED
    assert (await store.get(late.id)).status is TaskStatus.QUEUED
    assert daemon.status.completed == 1
    assert engine.closed


async def test_a_40_s_task_is_cancelled_at_30_s_and_requeued_without_spending_a_retry(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(delays={"monitor_pr": 40})
    async with running(stores, store, engine) as daemon:
        task = await daemon.enqueue(pr_task())
        await engine.entered.wait_value(1)
        stop_at = trio.current_time()
        daemon.request_shutdown()
        await daemon.state.wait_value(ServiceState.STOPPED)
        assert trio.current_time() - stop_at == pytest.approx(30, abs=0.01)
    after = await store.get(task.id)
    assert (after.status, after.attempts, after.error) == (TaskStatus.QUEUED, 0, None)
    assert await event_kinds(store, task.id) == ["enqueued", "claimed", "released"]
    assert daemon.status.interrupted == 1
    assert ("finish", f"{REPO}#12") not in engine.calls  # the workspace survives a restart


async def test_drain_returns_as_soon_as_the_last_task_ends(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(delays={"monitor_pr": 2})
    async with running(stores, store, engine) as daemon:
        await daemon.enqueue(pr_task())
        await engine.entered.wait_value(1)
        stop_at = trio.current_time()
        daemon.request_shutdown()
        await daemon.state.wait_value(ServiceState.STOPPED)
        assert trio.current_time() - stop_at == pytest.approx(2, abs=0.01)


async def test_a_released_task_resumes_after_a_restart_from_its_stored_progress(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    first = fake(delays={"run_tests": 100})
    async with running(stores, store, first) as daemon:
        task = await daemon.enqueue(issue_task())
        await wait_for(lambda: called(first, "run_tests"))
    assert (await store.get(task.id)).status is TaskStatus.QUEUED

    second = fake()
    async with running(stores, await stores.open(), second) as daemon:
        await status_is(store, task.id, TaskStatus.COMPLETED)
    assert second.steps() == ["run_tests", "create_pull_request", "finish"]
    done = await store.get(task.id)
    assert done.attempts == 1 and done.result is not None
    assert done.result["action"] == "auto_approved"


# --- claiming -------------------------------------------------------------------------------


async def test_an_enqueue_in_process_is_claimed_at_once(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake()
    async with running(stores, store, engine, poll_interval=60) as daemon:
        await trio.sleep(7)
        added_at = trio.current_time()
        task = await daemon.enqueue(pr_task())
        await status_is(store, task.id, TaskStatus.COMPLETED)
    assert engine.times[0] - added_at == pytest.approx(0, abs=0.01)


async def test_a_task_written_by_another_process_is_seen_within_the_poll_interval(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake()
    async with running(stores, store, engine, poll_interval=5):
        await trio.sleep(1)
        added_at = trio.current_time()
        task, _ = await store.add(pr_task())  # no wake: as if the CLI had added it
        await status_is(store, task.id, TaskStatus.COMPLETED)
    assert 0 < engine.times[0] - added_at <= 5.01


async def test_concurrency_never_exceeds_max_concurrent_tasks(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(delays={"monitor_pr": 5})
    async with running(stores, store, engine, max_concurrent_tasks=3) as daemon:
        start = trio.current_time()
        tasks = [await daemon.enqueue(pr_task(number)) for number in range(1, 11)]
        for task in tasks:
            await status_is(store, task.id, TaskStatus.COMPLETED)
        elapsed = trio.current_time() - start
    assert engine.peak == 3
    assert elapsed == pytest.approx(20, abs=0.1)  # ceil(10 / 3) rounds of 5 s


async def test_one_subject_runs_one_task_at_a_time(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(delays={"monitor_pr": 5})
    async with running(stores, store, engine, max_concurrent_tasks=5) as daemon:
        start = trio.current_time()
        tasks = [await daemon.enqueue(pr_task(12)) for _ in range(3)]
        tasks.append(await daemon.enqueue(pr_task(99)))
        for task in tasks:
            await status_is(store, task.id, TaskStatus.COMPLETED)
        elapsed = trio.current_time() - start
    assert engine.peak == 2  # #12 one at a time, #99 beside it
    assert elapsed == pytest.approx(15, abs=0.1)


async def test_a_comment_that_is_not_a_command_completes_as_ignored(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake()
    payload = {
        "repository": REPO,
        "issue": {"number": 3},
        "comment": {"body": "don't start yet", "author": "alice"},
    }
    async with running(stores, store, engine) as daemon:
        task = await daemon.enqueue(NewTask.build("issue_comment", payload))
        await status_is(store, task.id, TaskStatus.COMPLETED)
    done = await store.get(task.id)
    assert done.result == {
        "action": "ignored",
        "reason": "no /tamma start or @tamma start command at the start of a line",
    }
    assert engine.calls == []
    assert await event_kinds(store, task.id) == ["enqueued", "claimed", "completed"]


# --- status ---------------------------------------------------------------------------------


async def test_status_snapshots_follow_the_store(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(delays={"monitor_pr": 10})
    async with running(stores, store, engine) as daemon:
        assert daemon.status.state is ServiceState.RUNNING
        assert daemon.status.ready and daemon.status.store_ok
        await daemon.enqueue(pr_task(1))
        await store.add(pr_task(1))  # same subject: waits
        await trio.sleep(1.5)
        queue = daemon.status.queue
        assert queue is not None
        assert queue.by_status[TaskStatus.IN_PROGRESS] == 1
        assert queue.queue_depth == 1
        assert daemon.status.active_tasks == 1
    drained = daemon.status  # read after the drain (the checks above narrowed daemon.status)
    assert drained.state is ServiceState.STOPPED
    assert not drained.ready


async def test_a_store_that_stops_answering_marks_the_service_not_ready(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake()
    async with running(stores, store, engine) as daemon:
        hang = trio.Event()

        async def stuck() -> None:
            await hang.wait()

        daemon.store.ping = stuck  # type: ignore[method-assign]
        await trio.sleep(5)
        assert not daemon.status.store_ok
        assert daemon.status.store_error == "the store did not answer within 2 s"
        assert not daemon.status.ready
        hang.set()


async def test_a_shutdown_requested_while_starting_claims_nothing_and_stops(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    task, _ = await store.add(pr_task())
    engine = fake()
    daemon = Service(make_config(), store, lambda _: engine, wall=stores.wall, rng=zero)
    daemon.request_shutdown()
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        await daemon.state.wait_value(ServiceState.STOPPED)
    assert (await store.get(task.id)).status is TaskStatus.QUEUED
    assert engine.calls == []
    assert engine.initialized and engine.closed
