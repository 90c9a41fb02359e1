"""The TaskStore contract (store/base.py), part 1: intake, claim and the reads.

Runs against every backend of tests.store_helpers.STORE_BACKENDS; part 2 is
test_store_lifecycle.py.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

import pytest
import trio

from tamma_trio.errors import StoreError, TaskNotFoundError
from tamma_trio.models import TaskStatus, TaskType
from tamma_trio.store.base import TaskStore
from tests.store_helpers import at, claim_one, kinds

if TYPE_CHECKING:
    from tests.store_helpers import FakeWall, StoreFactory, TaskBuilder


# --- intake ---------------------------------------------------------------------------------


async def test_add_stores_a_queued_task_and_an_enqueued_event(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    task, created = await store.add(make_task(42, priority=2, max_retries=5, actor="webhook"))

    assert created
    assert (task.status, task.priority, task.max_retries, task.attempts) == ("queued", 2, 5, 0)
    assert task.subject == "acme/widgets#42"
    assert task.created_at == task.not_before == at(wall.start)
    assert task.created_at.tzinfo is dt.UTC
    assert (task.started_at, task.finished_at, task.lease_token) == (None, None, None)
    assert await store.get(task.id) == task
    [event] = await store.events(task.id)
    assert (event.kind, event.actor, event.status) == ("enqueued", "webhook", "queued")
    assert event.at == task.created_at


async def test_a_known_key_returns_the_existing_task_and_writes_nothing(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    first, created = await store.add(make_task(1, key="delivery-1"))
    again, created_again = await store.add(make_task(2, key="delivery-1", priority=3))

    assert created and not created_again
    assert again == first
    assert len(await store.list_tasks()) == 1
    assert await kinds(store, first.id) == ["enqueued"]


async def test_add_many_is_idempotent_within_one_batch(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    results = await store.add_many(
        [make_task(1, key="a"), make_task(2, key="a"), make_task(3), make_task(4, key="b")]
    )

    assert [created for _, created in results] == [True, False, True, True]
    assert results[1][0].id == results[0][0].id
    assert (await store.stats()).queue_depth == 3


async def test_unknown_ids_raise_task_not_found(store: TaskStore) -> None:
    with pytest.raises(TaskNotFoundError, match="no task with id 99"):
        await store.get(99)
    with pytest.raises(TaskNotFoundError):
        await store.events(99)
    with pytest.raises(TaskNotFoundError):
        await store.record_event(99, "step", {})
    with pytest.raises(TaskNotFoundError):
        await store.cancel(99)
    with pytest.raises(TaskNotFoundError):
        await store.retry(99)


# --- claim ----------------------------------------------------------------------------------


async def test_claim_takes_highest_priority_first_then_oldest(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    low, _ = await store.add(make_task(1, priority=0))
    normal_old, _ = await store.add(make_task(2, priority=1))
    critical, _ = await store.add(make_task(3, priority=3))
    normal_new, _ = await store.add(make_task(4, priority=1))

    claimed = await store.claim(3)

    assert [t.id for t in claimed] == [critical.id, normal_old.id, normal_new.id]
    assert [t.id for t in await store.claim(10)] == [low.id]
    assert await store.claim(10) == []


async def test_claim_sets_the_lease_and_counts_the_attempt(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    task, _ = await store.add(make_task())
    wall.advance(5)

    [claimed] = await store.claim(5, lease_seconds=30)

    assert (claimed.id, claimed.status, claimed.attempts) == (task.id, "in_progress", 1)
    assert claimed.lease_owner == store.boot_id == "boot-a"
    assert claimed.lease_token is not None and re.fullmatch(r"[0-9a-f]{32}", claimed.lease_token)
    assert claimed.started_at == at(wall.start + 5)
    assert claimed.lease_expires == at(wall.start + 35)
    assert await store.get(task.id) == claimed
    [_, event] = await store.events(task.id)
    assert (event.kind, event.status, event.detail["attempt"]) == ("claimed", "in_progress", 1)


async def test_claim_waits_for_not_before(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    task, _ = await store.add(make_task())
    claimed = await claim_one(store)
    await store.retry_later(task.id, claimed.lease_token or "", "flaky", wall.start + 60)

    assert await store.claim(1) == []
    assert await store.next_due() == wall.start + 60
    wall.advance(59.9)
    assert await store.claim(1) == []
    wall.advance(0.1)
    assert [t.id for t in await store.claim(1)] == [task.id]


async def test_a_deferral_refunds_the_attempt_and_waits_for_its_time(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    task, _ = await store.add(make_task())
    claimed = await claim_one(store)
    reset = wall.start + 3600

    await store.retry_later(task.id, claimed.lease_token or "", "rate limited", reset, defer=True)

    deferred = await store.get(task.id)
    assert (deferred.status, deferred.attempts, deferred.error) == ("queued", 0, "rate limited")
    assert (deferred.not_before, deferred.lease_token) == (at(reset), None)
    assert await store.next_due() == reset
    event = (await store.events(task.id))[-1]
    assert (event.kind, event.status, event.actor) == ("deferred", "queued", "worker")
    assert event.detail == {
        "attempt": 1,
        "error": "rate limited",
        "not_before": at(reset).isoformat(),
    }
    assert await store.claim(1) == []  # the wait itself: test_claim_waits_for_not_before


async def test_a_deferral_after_spent_retries_keeps_them_spent(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    task, _ = await store.add(make_task())
    first = await claim_one(store)
    await store.retry_later(task.id, first.lease_token or "", "flaky", wall.start)
    second = await claim_one(store)
    assert second.attempts == 2

    await store.retry_later(task.id, second.lease_token or "", "limit", wall.start, defer=True)

    assert (await store.get(task.id)).attempts == 1
    assert await kinds(store, task.id) == [
        "enqueued",
        "claimed",
        "retry_scheduled",
        "claimed",
        "deferred",
    ]


async def test_one_subject_never_runs_twice_at_once(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    first, _ = await store.add(make_task(7))
    second, _ = await store.add(make_task(7))
    other, _ = await store.add(make_task(8))

    batch = await store.claim(10)
    assert [t.id for t in batch] == [first.id, other.id]
    assert await store.claim(10) == []

    await store.complete(first.id, batch[0].lease_token or "", {})
    assert [t.id for t in await store.claim(10)] == [second.id]


async def test_claim_of_nothing_is_empty(store: TaskStore, make_task: TaskBuilder) -> None:
    await store.add(make_task())
    assert await store.claim(0) == []
    with pytest.raises(ValueError, match="lease_seconds"):
        await store.claim(1, lease_seconds=0)
    assert (await store.stats()).queue_depth == 1


async def test_concurrent_claims_never_hand_out_a_task_twice(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    await store.add_many([make_task(n) for n in range(1, 101)])
    seen: list[int] = []

    async def worker() -> None:
        while batch := await store.claim(3):
            for task in batch:
                seen.append(task.id)
                await store.complete(task.id, task.lease_token or "", {"by": "worker"})

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(worker)

    assert sorted(seen) == list(range(1, 101))
    stats = await store.stats()
    assert stats.by_status[TaskStatus.COMPLETED] == 100
    assert stats.by_status[TaskStatus.IN_PROGRESS] == 0


# --- the reads ---------------------------------------------------------------------------


async def test_stats_count_by_status_and_age_the_queue(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    empty = await store.stats()
    assert (empty.queue_depth, empty.oldest_queued_age) == (0, None)
    assert set(empty.by_status.values()) == {0}

    await store.add(make_task(1, priority=0))
    wall.advance(30)
    await store.add_many([make_task(2, priority=0), make_task(3), make_task(4)])
    claimed = await claim_one(store)
    await store.complete(claimed.id, claimed.lease_token or "", {})
    await claim_one(store)
    wall.advance(10)

    stats = await store.stats()
    assert stats.by_status == {
        TaskStatus.QUEUED: 2,
        TaskStatus.IN_PROGRESS: 1,
        TaskStatus.COMPLETED: 1,
        TaskStatus.FAILED: 0,
        TaskStatus.CANCELLED: 0,
    }
    assert (stats.queue_depth, stats.oldest_queued_age) == (2, 40.0)


async def test_next_due_is_the_earliest_queued_not_before(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    assert await store.next_due() is None
    await store.add_many([make_task(1), make_task(2)])
    first, second = await store.claim(2)
    await store.retry_later(first.id, first.lease_token or "", "x", wall.start + 50)
    await store.retry_later(second.id, second.lease_token or "", "x", wall.start + 20)

    assert await store.next_due() == wall.start + 20
    await store.cancel(second.id)
    assert await store.next_due() == wall.start + 50


async def test_list_tasks_newest_first_with_filters(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    ids = [t.id for t, _ in await store.add_many([make_task(n) for n in range(1, 6)])]
    await store.add(
        make_task(9).model_copy(
            update={
                "type": TaskType.PR_REVIEW_REQUESTED,
                "payload": {"repository": "acme/widgets", "pull_request": {"number": 9}},
            }
        )
    )
    await store.cancel(ids[1])

    assert [t.id for t in await store.list_tasks()] == [6, *reversed(ids)]
    assert [t.id for t in await store.list_tasks(limit=2, offset=1)] == [ids[4], ids[3]]
    assert [t.id for t in await store.list_tasks(status=TaskStatus.CANCELLED)] == [ids[1]]
    assert [t.id for t in await store.list_tasks(type=TaskType.PR_REVIEW_REQUESTED)] == [6]
    assert await store.list_tasks(status=TaskStatus.FAILED) == []
    with pytest.raises(ValueError, match="limit"):
        await store.list_tasks(limit=-1)


async def test_returned_tasks_do_not_alias_the_store(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    task, _ = await store.add(make_task())
    task.payload["issue"]["number"] = 666

    assert (await store.get(task.id)).payload["issue"]["number"] == 1


async def test_a_store_refuses_calls_before_open_and_after_close(
    store_factory: StoreFactory, make_task: TaskBuilder, wall: FakeWall
) -> None:
    unopened = store_factory(clock=wall)
    with pytest.raises(StoreError, match="not open"):
        await unopened.add(make_task())

    async with unopened:
        await unopened.ping()
    with pytest.raises(StoreError, match="not open"):
        await unopened.ping()
