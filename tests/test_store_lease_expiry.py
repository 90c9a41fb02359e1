"""The TaskStore contract, part 3: leases that expire while the daemon runs (reclaim_expired).

Runs against every backend of tests.store_helpers.STORE_BACKENDS, on the hand-driven wall clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tamma_trio.errors import LeaseLostError
from tamma_trio.models import TaskStatus
from tamma_trio.store.base import TaskStore
from tamma_trio.store.lifecycle import lease_quarantine_error
from tests.store_helpers import START_WALL, at, claim_one, kinds
from tests.test_store_lifecycle import LEASED_CALLS

if TYPE_CHECKING:
    from tests.store_helpers import FakeWall, StoreFactory, TaskBuilder

LEASE = 60.0


async def test_an_expired_lease_goes_back_to_the_queue_with_the_attempt_refunded(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    task, _ = await store.add(make_task())
    await claim_one(store)
    wall.advance(LEASE)

    [reclaimed] = await store.reclaim_expired()

    assert reclaimed == await store.get(task.id)
    assert (reclaimed.status, reclaimed.attempts, reclaimed.interruptions) == ("queued", 0, 1)
    assert (reclaimed.lease_owner, reclaimed.lease_token, reclaimed.lease_expires) == (None,) * 3
    assert reclaimed.not_before == at(wall.now)
    event = (await store.events(task.id))[-1]
    assert (event.kind, event.actor, event.status) == ("lease_expired", "daemon", "queued")
    assert event.detail == {
        "previous_owner": "boot-a",
        "lease_expires": at(START_WALL + LEASE).isoformat(),
        "interruptions": 1,
    }
    assert await store.reclaim_expired() == []


async def test_a_lease_is_reclaimed_at_its_expiry_and_not_a_moment_before(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    task, _ = await store.add(make_task())
    claimed = await claim_one(store)
    wall.advance(LEASE - 0.001)
    assert await store.reclaim_expired() == []
    assert await store.get(task.id) == claimed

    wall.advance(0.001)
    assert [t.id for t in await store.reclaim_expired()] == [task.id]


async def test_an_extended_lease_is_not_reclaimed(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    await store.add(make_task())
    claimed = await claim_one(store)
    wall.advance(LEASE / 2)
    assert await store.extend_leases([claimed.lease_token or ""], LEASE) == {claimed.lease_token}
    wall.advance(LEASE / 2)

    assert await store.reclaim_expired() == []


async def test_only_expired_tasks_move_whoever_holds_them(
    store: TaskStore, store_factory: StoreFactory, make_task: TaskBuilder, wall: FakeWall
) -> None:
    mine, _ = await store.add(make_task(1))
    theirs, _ = await store.add(make_task(2))
    fresh, _ = await store.add(make_task(3))
    await claim_one(store)
    other = store_factory(clock=wall, boot_id="boot-b")
    async with other:
        await claim_one(other)
        wall.advance(LEASE)
        await other.claim(1, lease_seconds=10 * LEASE)

        reclaimed = await store.reclaim_expired()

    assert [t.id for t in reclaimed] == [mine.id, theirs.id]
    assert [t.status for t in reclaimed] == ["queued", "queued"]
    assert (await store.get(fresh.id)).status is TaskStatus.IN_PROGRESS
    assert (await store.events(theirs.id))[-1].detail["previous_owner"] == "boot-b"


@pytest.mark.parametrize("call", sorted(LEASED_CALLS))
async def test_the_old_holder_cannot_end_a_reclaimed_task(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall, call: str
) -> None:
    task, _ = await store.add(make_task())
    old = await claim_one(store)
    wall.advance(LEASE)
    await store.reclaim_expired()
    new = await claim_one(store)

    with pytest.raises(LeaseLostError, match=f"task {task.id} is no longer held"):
        await LEASED_CALLS[call](store, task.id, old.lease_token)

    assert new.lease_token != old.lease_token and new.attempts == 1
    await store.complete(task.id, new.lease_token or "", {"by": "new"})
    assert (await store.get(task.id)).result == {"by": "new"}
    assert await kinds(store, task.id) == [
        "enqueued",
        "claimed",
        "lease_expired",
        "claimed",
        "completed",
    ]


async def test_a_lease_that_keeps_expiring_is_quarantined(
    store_factory: StoreFactory, make_task: TaskBuilder, wall: FakeWall
) -> None:
    store = store_factory(clock=wall, boot_id="boot-a", quarantine_after=2)
    async with store:
        task, _ = await store.add(make_task())
        outcomes = []
        for _ in range(2):
            await claim_one(store)
            wall.advance(LEASE)
            outcomes.extend(await store.reclaim_expired())

        assert [t.status for t in outcomes] == ["queued", "failed"]
        quarantined = outcomes[-1]
        assert (quarantined.attempts, quarantined.interruptions) == (0, 2)
        assert quarantined.error == lease_quarantine_error(2)
        assert quarantined.finished_at == at(wall.now)
        event = (await store.events(task.id))[-1]
        assert (event.kind, event.status) == ("quarantined", "failed")
        assert event.detail["cause"] == "lease_expired"
        assert await store.claim(1) == []
