"""The TaskStore contract, part 3: the service event stream and the webhook outbox.

Runs against every backend of tests.store_helpers.STORE_BACKENDS, like parts 1 and 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tamma_trio.service_events import EventKind, NewServiceEvent, NotificationStatus
from tamma_trio.store.base import TaskStore
from tests.store_helpers import at

if TYPE_CHECKING:
    from tests.store_helpers import FakeWall, StoreFactory

FAILED = NewServiceEvent(
    kind=EventKind.TASK_FAILED,
    task_id=7,
    task_type="issue_assigned",
    repository="acme/widgets",
    subject="acme/widgets#7",
    reason="tests failed",
    detail={"attempts": 2},
)


async def test_publish_numbers_and_dates_events_in_order(store: TaskStore, wall: FakeWall) -> None:
    first = await store.publish(NewServiceEvent(kind=EventKind.SERVICE_STARTED))
    wall.advance(5)
    second = await store.publish(FAILED)

    assert second.id > first.id
    assert (first.at, second.at) == (at(wall.start), at(wall.start + 5))
    assert second.model_dump(exclude={"id", "at"}) == FAILED.model_dump()
    assert await store.service_events() == [first, second]
    assert await store.service_events(after=first.id) == [second]
    assert await store.service_events(after=second.id) == []
    assert await store.service_events(limit=1) == [first]


async def test_public_shape_names_the_type(store: TaskStore) -> None:
    event = await store.publish(FAILED)
    body = event.public()
    assert body["type"] == "task.failed" and "kind" not in body
    assert body["id"] == event.id and body["reason"] == "tests failed"
    assert body["at"].endswith("+00:00")


async def test_publish_queues_one_due_delivery_per_target(store: TaskStore, wall: FakeWall) -> None:
    event = await store.publish(FAILED, targets=["hook-a", "hook-b"])
    await store.publish(NewServiceEvent(kind=EventKind.SERVICE_STARTED))  # nobody listens

    pending = await store.notifications(status=NotificationStatus.PENDING)
    assert [(d.target, d.event, d.attempts) for d in pending] == [
        ("hook-a", event, 0),
        ("hook-b", event, 0),
    ]
    assert all(d.next_attempt_at == at(wall.start) for d in pending)
    assert await store.notifications(status=NotificationStatus.DEAD) == []


async def test_a_failed_attempt_waits_and_a_success_delivers(
    store: TaskStore, wall: FakeWall
) -> None:
    await store.publish(FAILED, targets=["hook-a", "hook-b"])
    a, b = await store.notifications(status=NotificationStatus.PENDING)

    await store.record_notification(a.id, error="HTTP 500", next_attempt=wall.start + 60)
    wall.advance(1)
    await store.record_notification(b.id, error=None)

    (waiting,) = await store.notifications(status=NotificationStatus.PENDING)
    assert waiting.id == a.id and waiting.attempts == 1 and waiting.last_error == "HTTP 500"
    assert waiting.next_attempt_at == at(wall.start + 60)
    (done,) = await store.notifications(status=NotificationStatus.DELIVERED)
    assert done.id == b.id and done.delivered_at == at(wall.start + 1)


async def test_pending_deliveries_come_in_due_order(store: TaskStore, wall: FakeWall) -> None:
    await store.publish(FAILED, targets=["late", "soon"])
    late, soon = await store.notifications(status=NotificationStatus.PENDING)
    await store.record_notification(late.id, error="down", next_attempt=wall.start + 100)
    await store.record_notification(soon.id, error="down", next_attempt=wall.start + 10)
    assert [d.target for d in await store.notifications(status=NotificationStatus.PENDING)] == [
        "soon",
        "late",
    ]


async def test_dead_deliveries_can_be_queued_again(store: TaskStore, wall: FakeWall) -> None:
    await store.publish(FAILED, targets=["a", "b", "c"])
    a, b, c = await store.notifications(status=NotificationStatus.PENDING)
    for delivery in (a, b):
        await store.record_notification(delivery.id, error="gone", next_attempt=None)
    await store.record_notification(c.id, error=None)
    dead = await store.notifications(status=NotificationStatus.DEAD)
    assert [d.id for d in dead] == [b.id, a.id]  # newest first
    assert all(d.attempts == 1 and d.next_attempt_at is None for d in dead)

    wall.advance(30)
    assert await store.renotify([a.id, c.id]) == 1  # c was delivered: left alone
    (again,) = await store.notifications(status=NotificationStatus.PENDING)
    assert again.id == a.id and again.attempts == 0 and again.next_attempt_at == at(wall.now)
    assert await store.renotify() == 1  # every dead one: b
    assert await store.notifications(status=NotificationStatus.DEAD) == []


async def test_recording_a_delivery_that_is_no_longer_pending_changes_nothing(
    store: TaskStore,
) -> None:
    await store.publish(FAILED, targets=["a"])
    (a,) = await store.notifications()
    await store.record_notification(a.id, error=None)
    await store.record_notification(a.id, error="late failure", next_attempt=None)
    (after,) = await store.notifications()
    assert after.status is NotificationStatus.DELIVERED and after.last_error is None


async def test_events_and_deliveries_survive_a_restart(
    store: TaskStore, store_factory: StoreFactory, wall: FakeWall
) -> None:
    event = await store.publish(FAILED, targets=["a"])
    await store.aclose()  # the fixture's store, gone as a stopped daemon's is
    async with store_factory(clock=wall, boot_id="boot-b") as restarted:
        assert await restarted.service_events() == [event]
        (pending,) = await restarted.notifications(status=NotificationStatus.PENDING)
        assert pending.event == event
        later = await restarted.publish(FAILED)
        assert later.id > event.id
