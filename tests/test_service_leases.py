"""Leases that expire while the daemon runs (under trio's MockClock, MemoryStore and SQLite).

The daemon reclaims them on a timer: the task is queued again, an interruption counted, the old
holder's token refused, and an attempt of this daemon still running the task is stopped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from tamma_trio.errors import LeaseLostError
from tamma_trio.models import TaskStatus
from tamma_trio.service import trio_wall_clock
from tamma_trio.store.base import TaskStore
from tests.faults import FailingStore
from tests.service_helpers import (
    STORE_KINDS,
    Stores,
    event_kinds,
    fake,
    has_event,
    outcome_count,
    pr_task,
    running,
    status_is,
    wait_for,
)
from tests.store_helpers import claim_one

LEASE = 60.0


@pytest.fixture(params=STORE_KINDS)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    stores = Stores(request.param, tmp_path / "tasks.db", trio_wall_clock())
    yield stores
    await stores.close()


@pytest.fixture
async def store(stores: Stores) -> TaskStore:
    return await stores.open()


async def test_a_task_held_by_a_daemon_that_went_quiet_is_reclaimed_and_run(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    engine = fake()
    async with running(stores, store, engine, lease_duration=LEASE) as daemon:
        quiet = await stores.open("quiet-daemon")  # claims after our start: no orphan
        task, _ = await quiet.add(pr_task())
        held = await claim_one(quiet)
        claimed_at = trio.current_time()
        await status_is(store, task.id, TaskStatus.COMPLETED)
        ran_at = engine.times[0]

    # Reclaimed at the first pass after the expiry; passes run every half lease.
    assert LEASE <= ran_at - claimed_at <= LEASE * 1.5
    assert await event_kinds(store, task.id) == [
        "enqueued",
        "claimed",
        "lease_expired",
        "claimed",
        "completed",
    ]
    with pytest.raises(LeaseLostError):
        await quiet.complete(task.id, held.lease_token or "", {"by": "the quiet one"})
    done = await store.get(task.id)
    assert (done.attempts, done.interruptions) == (1, 1)
    assert done.result is not None and done.result["action"] == "merged"
    assert daemon.status.reclaimed == 1
    assert daemon.metrics.registry.get_sample_value("tamma_leases_reclaimed_total") == 1


async def test_our_own_attempt_whose_lease_expired_is_stopped_not_run_twice(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    faulty = FailingStore(store, failing={"extend_leases"})
    engine = fake(delays={"monitor_pr": 1000})
    async with running(stores, faulty.as_store(), engine, lease_duration=LEASE) as daemon:
        task = await daemon.enqueue(pr_task())
        await engine.entered.wait_value(1)
        await wait_for(lambda: has_event(store, task.id, "lease_expired"))
        faulty.failing.clear()  # renewals work again from here
        await wait_for(lambda: outcome_count(daemon, "lease_lost"))
        await engine.entered.wait_value(2)
        assert engine.peak == 1  # the stopped attempt ended before the new one began
    assert faulty.refused["extend_leases"] >= 2
    kinds = await event_kinds(store, task.id)
    assert kinds[:4] == ["enqueued", "claimed", "lease_expired", "claimed"]
    assert "completed" not in kinds[:4]


async def test_a_task_whose_lease_keeps_expiring_is_quarantined_and_escalated(
    autojump_clock: MockClock, stores: Stores, store: TaskStore
) -> None:
    faulty = FailingStore(store, failing={"extend_leases"})
    engine = fake(delays={"monitor_pr": 10_000})
    async with running(stores, faulty.as_store(), engine, lease_duration=LEASE) as daemon:
        task = await daemon.enqueue(pr_task())
        await status_is(store, task.id, TaskStatus.FAILED)
        await wait_for(lambda: has_event(store, task.id, "escalated"))
    failed = await store.get(task.id)
    assert failed.interruptions == 3
    assert failed.error == "quarantined: interrupted 3 times, the last by a lease that expired"
    assert ("escalate", "acme/widgets#12") in engine.calls
    assert daemon.status.failed == 1 and daemon.status.reclaimed == 3
