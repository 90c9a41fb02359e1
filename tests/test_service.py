"""The daemon's core under trio's MockClock: drain, backoff, leases, recovery, bounded workers.

Each test runs against a MemoryStore and an inline SQLite store (real SQL on the trio thread, so
autojump cannot skip time while a query runs). Times are virtual: a "40 s task" costs
milliseconds, and assertions on times are exact to the millisecond. pytest-trio only takes a
clock from the test's own arguments, so every test names ``autojump_clock``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from tamma_trio.config import Config
from tamma_trio.models import NewTask, TaskStatus
from tamma_trio.service import Service, trio_wall_clock
from tamma_trio.status import ServiceState
from tamma_trio.store.base import TaskStore, WallClock
from tamma_trio.store.memory import MemoryState, MemoryStore
from tamma_trio.store.sqlite import SqliteStore
from tests.fake_engine import FakeEngine, FakeOptions

REPO = "acme/widgets"


class Stores:
    """Opens stores over one set of data; a second store with a new boot id is a restart."""

    def __init__(self, kind: str, path: Path, wall: WallClock) -> None:
        self.kind = kind
        self.path = path
        self.wall = wall
        self.state = MemoryState()
        self.opened: list[TaskStore] = []

    async def open(self, boot_id: str | None = None) -> TaskStore:
        store: TaskStore
        if self.kind == "memory":
            store = MemoryStore(clock=self.wall, boot_id=boot_id, state=self.state)
        else:
            store = SqliteStore(
                self.path, synchronous="NORMAL", clock=self.wall, boot_id=boot_id, inline=True
            )
        await store.open()
        self.opened.append(store)
        return store

    async def close(self) -> None:
        for store in self.opened:
            await store.aclose()


@pytest.fixture(params=["memory", "sqlite"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    stores = Stores(request.param, tmp_path / "tasks.db", trio_wall_clock())
    yield stores
    await stores.close()


@pytest.fixture
async def store(stores: Stores) -> TaskStore:
    return await stores.open()


def make_config(**service: Any) -> Config:
    settings: dict[str, Any] = {
        "health_check": {"enabled": False},
        "metrics": {"enabled": False},
        "poll_interval": 60,
        "retry_delay": 10,
        **service,
    }
    return Config.model_validate({"service": settings})


def fake(**options: Any) -> FakeEngine:
    return FakeEngine(FakeOptions.model_validate(options))


@asynccontextmanager
async def running(
    stores: Stores, store: TaskStore, engine: FakeEngine, **service: Any
) -> AsyncIterator[Service]:
    """A started service; leaving the block drains it like a SIGTERM would."""
    daemon = Service(make_config(**service), store, lambda _: engine, wall=stores.wall, rng=zero)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        yield daemon
        daemon.request_shutdown()
        await daemon.state.wait_value(ServiceState.STOPPED)


def zero() -> float:
    return 0.0


def pr_task(number: int = 12, **fields: Any) -> NewTask:
    return NewTask.build(
        "pr_review_requested", {"repository": REPO, "pull_request": {"number": number}}, **fields
    )


def issue_task(number: int = 7) -> NewTask:
    return NewTask.build("issue_assigned", {"repository": REPO, "issue": {"number": number}})


async def wait_for(check: Callable[[], Awaitable[bool]], within: float = 300) -> None:
    """Poll in virtual time; only the condition's truth matters, never how long it took."""
    with trio.fail_after(within):
        while not await check():
            await trio.sleep(0.05)


async def status_is(store: TaskStore, task_id: int, *statuses: TaskStatus) -> None:
    async def check() -> bool:
        return (await store.get(task_id)).status in statuses

    await wait_for(check)


async def event_kinds(store: TaskStore, task_id: int) -> list[str]:
    return [event.kind for event in await store.events(task_id)]


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
        await wait_for(lambda: _called(first, "run_tests"))
    assert (await store.get(task.id)).status is TaskStatus.QUEUED

    second = fake()
    async with running(stores, await stores.open(), second) as daemon:
        await status_is(store, task.id, TaskStatus.COMPLETED)
    assert second.steps() == ["run_tests", "create_pull_request", "finish"]
    done = await store.get(task.id)
    assert done.attempts == 1 and done.result is not None
    assert done.result["action"] == "auto_approved"


async def _called(engine: FakeEngine, step: str) -> bool:
    await trio.lowlevel.checkpoint()
    return step in engine.steps()


# --- retries and escalation -----------------------------------------------------------------


async def test_a_retry_fires_exactly_at_its_backoff(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(failures={"monitor_pr": {"times": 2}})
    async with running(stores, store, engine, poll_interval=60) as daemon:
        task = await daemon.enqueue(pr_task())
        await status_is(store, task.id, TaskStatus.COMPLETED)
    start, second, third = engine.times[:3]
    assert second - start == pytest.approx(10, abs=0.01)  # retry_delay * 2**0
    assert third - second == pytest.approx(20, abs=0.01)  # retry_delay * 2**1
    kinds = await event_kinds(store, task.id)
    assert kinds.count("retry_scheduled") == 2 and kinds[-1] == "completed"
    assert (await store.get(task.id)).attempts == 3
    assert daemon.status.retried == 2


async def test_retries_are_spent_then_the_task_fails_and_is_escalated(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(failures={"monitor_pr": {"code": "forge_down"}})
    async with running(stores, store, engine, retry_delay=1) as daemon:
        task = await daemon.enqueue(pr_task())
        await wait_for(lambda: _has_event(store, task.id, "escalated"))
    failed = await store.get(task.id)
    assert failed.attempts == 4  # max 3 retries
    assert failed.error == "monitor_pr failed (injected)"
    assert engine.steps().count("monitor_pr") == 4
    [(target, reason, details)] = engine.escalations
    assert target.number == 12
    assert "after 4 attempt(s)" in reason
    assert details["code"] == "forge_down"
    events = await store.events(task.id)
    [escalated] = [event for event in events if event.kind == "escalated"]
    assert escalated.detail == {
        "code": "forge_down",
        "error": "monitor_pr failed (injected)",
        "attempts": 4,
        "notified": True,
    }
    assert (daemon.status.failed, daemon.status.escalated) == (1, 1)
    sample = daemon.metrics.registry.get_sample_value(
        "tamma_task_escalations_total", {"type": "pr_review_requested"}
    )
    assert sample == 1


async def test_a_task_with_no_retries_fails_on_its_first_error(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(failures={"monitor_pr": {}})
    async with running(stores, store, engine):
        task = await store.add(pr_task(max_retries=0))
        await status_is(store, task[0].id, TaskStatus.FAILED)
    assert engine.steps().count("monitor_pr") == 1


async def test_an_error_that_cannot_be_retried_escalates_at_once(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(tests_pass=False)
    async with running(stores, store, engine):
        task = await store.add(issue_task())
        await status_is(store, task[0].id, TaskStatus.FAILED)
        await wait_for(lambda: _called(engine, "finish"))  # the issue's workspace is freed
    failed = await store.get(task[0].id)
    assert failed.attempts == 1
    assert failed.error == "tests failed (exit code 1)"
    assert "create_pull_request" not in engine.steps()
    assert len(engine.escalations) == 1


async def test_an_escalation_the_forge_refuses_is_recorded_as_not_delivered(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(failures={"monitor_pr": {"retryable": False}, "escalate": {}})
    async with running(stores, store, engine):
        task, _ = await store.add(pr_task())
        await wait_for(lambda: _has_event(store, task.id, "escalated"))
    [event] = [e for e in await store.events(task.id) if e.kind == "escalated"]
    assert event.detail["notified"] is False
    assert event.detail["notify_error"] == "escalate failed (injected)"


async def _has_event(store: TaskStore, task_id: int, kind: str) -> bool:
    return kind in await event_kinds(store, task_id)


async def test_a_task_over_its_timeout_fails_at_the_timeout(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(delays={"monitor_pr": 100})
    async with running(stores, store, engine, task_timeout=5):
        task, _ = await store.add(pr_task(max_retries=0))
        await status_is(store, task.id, TaskStatus.FAILED)
    failed = await store.get(task.id)
    assert failed.error == "the task exceeded its timeout"
    assert failed.finished_at is not None and failed.started_at is not None
    assert (failed.finished_at - failed.started_at).total_seconds() == pytest.approx(5, abs=0.01)


# --- leases ---------------------------------------------------------------------------------


async def test_cancelling_a_running_task_stops_it_at_the_next_lease_renewal(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(delays={"select_issue": 1000})
    async with running(stores, store, engine, lease_duration=15) as daemon:
        task = await daemon.enqueue(issue_task())
        await engine.entered.wait_value(1)
        cancelled_at = trio.current_time()
        await store.cancel(task.id, actor="test")
        await wait_for(lambda: _called(engine, "finish"))
        stopped_at = engine.times[engine.steps().index("finish")]
        assert 0 < stopped_at - cancelled_at <= 5.001  # lease_duration / 3
        assert not daemon.worker.running
    assert (await store.get(task.id)).status is TaskStatus.CANCELLED
    assert "completed" not in await event_kinds(store, task.id)
    outcome = daemon.metrics.registry.get_sample_value(
        "tamma_task_outcomes_total", {"type": "issue_assigned", "outcome": "cancelled"}
    )
    assert outcome == 1


async def test_a_lost_lease_drops_the_attempt_and_the_task_completes_once(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(delays={"monitor_pr": 25})
    async with running(stores, store, engine, lease_duration=30, poll_interval=5) as daemon:
        task = await daemon.enqueue(pr_task())
        await engine.entered.wait_value(1)
        # Another daemon's start-up takes the task away (its lease owner is not that boot).
        intruder = await stores.open(boot_id="intruder")
        [recovered] = await intruder.recover_orphans()
        assert recovered.id == task.id
        await status_is(store, task.id, TaskStatus.COMPLETED)
    kinds = await event_kinds(store, task.id)
    assert kinds.count("completed") == 1
    assert kinds.count("claimed") == 2
    dropped = daemon.metrics.registry.get_sample_value(
        "tamma_task_outcomes_total", {"type": "pr_review_requested", "outcome": "lease_lost"}
    )
    assert dropped == 1


async def test_a_result_reported_after_the_lease_was_lost_is_dropped(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(delays={"monitor_pr": 3})
    async with running(stores, store, engine, lease_duration=60) as daemon:
        task = await daemon.enqueue(pr_task())
        await engine.entered.wait_value(1)
        intruder = await stores.open(boot_id="intruder")
        await intruder.recover_orphans()
        await wait_for(lambda: _outcome_count(daemon, "lease_lost"))
        await status_is(store, task.id, TaskStatus.COMPLETED)
    # No lease renewal came in between (every 20 s): both attempts ran to their end, and the
    # first one's complete() found its lease gone, so the task was completed once.
    assert engine.steps().count("merge_pr") == 2
    assert (await event_kinds(store, task.id)).count("completed") == 1
    assert daemon.status.completed == 1


async def _outcome_count(daemon: Service, outcome: str) -> bool:
    await trio.lowlevel.checkpoint()
    value = daemon.metrics.registry.get_sample_value(
        "tamma_task_outcomes_total", {"type": "pr_review_requested", "outcome": outcome}
    )
    return bool(value)


async def test_orphans_of_a_crashed_daemon_are_requeued_at_start(
    autojump_clock: MockClock, stores: Stores
) -> None:
    crashed = await stores.open(boot_id="crashed")
    await crashed.add(pr_task())
    [orphan] = await crashed.claim(1)
    store = await stores.open()
    engine = fake()
    async with running(stores, store, engine):
        await status_is(store, orphan.id, TaskStatus.COMPLETED)
    done = await store.get(orphan.id)
    assert done.attempts == 1 and done.interruptions == 1
    assert await event_kinds(store, orphan.id) == [
        "enqueued",
        "claimed",
        "orphan_recovered",
        "claimed",
        "completed",
    ]


async def test_a_task_that_keeps_crashing_the_daemon_is_quarantined_and_escalated(
    autojump_clock: MockClock,
    stores: Stores,
) -> None:
    first = await stores.open(boot_id="boot-0")
    task, _ = await first.add(pr_task())
    for boot in range(1, 4):
        assert len(await first.claim(1)) == 1
        first = await stores.open(boot_id=f"boot-{boot}")
        if boot < 3:
            await first.recover_orphans()
    store = await stores.open()
    engine = fake()
    async with running(stores, store, engine) as daemon:
        await status_is(store, task.id, TaskStatus.FAILED)
    assert [e.kind for e in await store.events(task.id)][-2:] == ["quarantined", "escalated"]
    assert len(engine.escalations) == 1
    assert daemon.status.escalated == 1
    assert "monitor_pr" not in engine.steps()


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
    assert daemon.status.state is ServiceState.STOPPED
    assert not daemon.status.ready


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
