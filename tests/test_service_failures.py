"""Failures under trio's MockClock: backoff, escalation, timeouts, leases, crash recovery.

Same setup as test_service.py: MemoryStore and inline SQLite, virtual time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from tamma_trio.models import TaskStatus
from tamma_trio.service import Service, trio_wall_clock
from tamma_trio.store.base import TaskStore
from tests.service_helpers import (
    STORE_KINDS,
    Stores,
    event_kinds,
    fake,
    has_event,
    issue_task,
    outcome_count,
    pr_task,
    running,
    status_is,
    wait_for,
)


@pytest.fixture(params=STORE_KINDS)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    stores = Stores(request.param, tmp_path / "tasks.db", trio_wall_clock())
    yield stores
    await stores.close()


@pytest.fixture
async def store(stores: Stores) -> TaskStore:
    return await stores.open()


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


async def test_a_rate_limited_step_is_retried_at_the_reset_not_before(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    reset = stores.wall() + 200  # far past the 10 s backoff
    engine = fake(failures={"monitor_pr": {"times": 1, "code": "rate_limited", "retry_at": reset}})
    async with running(stores, store, engine, poll_interval=60) as daemon:
        task = await daemon.enqueue(pr_task())
        await status_is(store, task.id, TaskStatus.COMPLETED)
    first, second = engine.times[:2]
    assert second - first == pytest.approx(200, abs=0.01)


async def test_a_retry_survives_a_restart_and_fires_at_its_backoff(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    first = fake(failures={"monitor_pr": {"times": 1}})
    async with running(stores, store, first) as daemon:
        task = await daemon.enqueue(pr_task())
        await wait_for(lambda: has_event(store, task.id, "retry_scheduled"))
    failed_at = first.times[0]
    assert (await store.get(task.id)).status is TaskStatus.QUEUED

    second = fake()
    async with running(stores, await stores.open(), second, poll_interval=60):
        await status_is(store, task.id, TaskStatus.COMPLETED)
    assert second.times[0] - failed_at == pytest.approx(10, abs=0.01)


async def test_retries_are_spent_then_the_task_fails_and_is_escalated(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake(failures={"monitor_pr": {"code": "forge_down"}})
    async with running(stores, store, engine, retry_delay=1) as daemon:
        task = await daemon.enqueue(pr_task())
        await wait_for(lambda: has_event(store, task.id, "escalated"))
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
    async with running(stores, store, engine) as daemon:
        task = await store.add(issue_task())
        await status_is(store, task[0].id, TaskStatus.FAILED)
        await wait_for(lambda: worker_idle(daemon))
    assert "finish" not in engine.steps()  # the workspace stays for whoever looks into it
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
        await wait_for(lambda: has_event(store, task.id, "escalated"))
    [event] = [e for e in await store.events(task.id) if e.kind == "escalated"]
    assert event.detail["notified"] is False
    assert event.detail["notify_error"] == "escalate failed (injected)"


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
        await wait_for(lambda: worker_idle(daemon))
        stopped_at = engine.times[engine.steps().index("remove_label")]  # the forge is told
        assert 0 < stopped_at - cancelled_at <= 5.001  # lease_duration / 3
        assert "finish" not in engine.steps()  # a cancelled task keeps its workspace too
    assert (await store.get(task.id)).status is TaskStatus.CANCELLED
    assert "completed" not in await event_kinds(store, task.id)
    # the forge hears of it: the in-progress label goes, a comment says who cancelled
    assert engine.removed_labels == [("acme/widgets#7", "tamma:in-progress")]
    [(subject, body)] = engine.comments
    assert (
        subject == "acme/widgets#7"
        and f"task {task.id} (issue_assigned) was cancelled by test" in body
    )
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
        await wait_for(lambda: outcome_count(daemon, "lease_lost"))
        await status_is(store, task.id, TaskStatus.COMPLETED)
    # No lease renewal came in between (every 20 s): both attempts ran to their end, and the
    # first one's complete() found its lease gone, so the task was completed once.
    assert engine.steps().count("merge_pr") == 2
    assert (await event_kinds(store, task.id)).count("completed") == 1
    assert daemon.status.completed == 1


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


async def worker_idle(daemon: Service) -> bool:
    return not daemon.worker.running
