"""The TaskStore contract, part 4: retention of the service event stream and the outbox.

Delivered notifications go after the retention, dead ones after the failed-task retention,
pending ones never; an event goes once it is old and no staying delivery needs it. Runs against
every backend of tests.store_helpers.STORE_BACKENDS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tamma_trio.service_events import (
    EventKind,
    NewServiceEvent,
    NotificationStatus,
    PrunedEvents,
    ServiceEvent,
)
from tamma_trio.store.base import TaskStore

if TYPE_CHECKING:
    from tests.store_helpers import FakeWall

STARTED = NewServiceEvent(kind=EventKind.SERVICE_STARTED)
FAILED = NewServiceEvent(kind=EventKind.TASK_FAILED, task_id=7, reason="tests failed")


async def outbox(store: TaskStore, wall: FakeWall) -> list[ServiceEvent]:
    """At the start: e1 without deliveries; e2 with one delivered (at +10) and one dead;
    e3 with one still pending. At +1000: e4, recent. The four events."""
    e1 = await store.publish(STARTED)
    e2 = await store.publish(FAILED, targets=["a", "b"])
    e3 = await store.publish(FAILED, targets=["c"])
    a, b, c = sorted(await store.notifications(), key=lambda note: note.id)
    await store.record_notification(b.id, error="gone", next_attempt=None)
    await store.record_notification(c.id, error="down", next_attempt=wall.start + 5000)
    wall.advance(10)
    await store.record_notification(a.id, error=None)
    wall.advance(990)
    e4 = await store.publish(STARTED)
    return [e1, e2, e3, e4]


async def targets(store: TaskStore) -> list[str]:
    return sorted(note.target for note in await store.notifications())


async def test_a_dry_run_counts_what_would_go_and_deletes_nothing(
    store: TaskStore, wall: FakeWall
) -> None:
    events = await outbox(store, wall)
    before = wall.start + 500
    got = await store.prune_events(before, wall.start + 1, 100, dry_run=True)
    assert got == PrunedEvents(events=2, notifications=2)  # e1, e2 with both its deliveries
    assert await store.service_events() == events
    assert await targets(store) == ["a", "b", "c"]


async def test_delivered_go_after_the_retention_dead_after_the_failed_one(
    store: TaskStore, wall: FakeWall
) -> None:
    _e1, e2, e3, e4 = await outbox(store, wall)
    before = wall.start + 500
    # b is dead but its event is younger than the failed retention: b and e2 stay
    assert await store.prune_events(before, wall.start - 1, 100) == PrunedEvents(1, 1)
    assert await store.service_events() == [e2, e3, e4]
    assert await targets(store) == ["b", "c"]
    assert await store.prune_events(before, wall.start + 1, 100) == PrunedEvents(1, 1)
    assert await store.service_events() == [e3, e4]  # c is pending: e3 stays, however old
    [pending] = await store.notifications()
    assert pending.target == "c" and pending.status is NotificationStatus.PENDING
    assert await store.prune_events(wall.now + 1, wall.now + 1, 100) == PrunedEvents(1, 0)
    assert await store.service_events() == [e3]


async def test_ids_are_never_reused_and_the_stream_resumes_after_a_prune(
    store: TaskStore, wall: FakeWall
) -> None:
    e1, _e2, e3, e4 = await outbox(store, wall)
    await store.prune_events(wall.start + 500, wall.start + 1, 100)
    e5 = await store.publish(STARTED)
    assert e5.id > e4.id
    assert await store.service_events(after=e1.id) == [e3, e4, e5]
    assert await store.service_events(after=e3.id, limit=1) == [e4]


async def test_each_call_deletes_at_most_limit_of_each(store: TaskStore, wall: FakeWall) -> None:
    for _ in range(3):
        await store.publish(STARTED)
    shared = await store.publish(FAILED, targets=["a", "b", "c"])
    for note in await store.notifications():
        await store.record_notification(note.id, error=None)
    wall.advance(100)
    before = wall.now
    # two of the three deliveries; `shared` still has one, so only two plain events go
    assert await store.prune_events(before, before, 2) == PrunedEvents(2, 2)
    assert await store.prune_events(before, before, 2) == PrunedEvents(2, 1)
    assert await store.prune_events(before, before, 2) == PrunedEvents(0, 0)
    assert await store.service_events() == [] and shared.id > 0


async def test_a_limit_below_one_is_refused(store: TaskStore) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
        await store.prune_events(0, 0, 0)
