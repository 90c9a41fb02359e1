"""The TaskStore contract, part 3: the list filters and paging, and the throughput buckets.

Runs against every backend of tests.store_helpers.STORE_BACKENDS, like test_store_contract.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tamma_trio.models import NewTask, TaskPriority, TaskStatus
from tamma_trio.store.base import TEXT_SEARCH_WINDOW, TaskStore
from tests.store_helpers import at, claim_one

if TYPE_CHECKING:
    from tests.store_helpers import FakeWall, TaskBuilder


def _issue(repository: str, number: int, title: str = "t") -> NewTask:
    payload = {"repository": repository, "issue": {"number": number, "title": title}}
    return NewTask.build("issue_assigned", payload)


async def _ids(store: TaskStore, **filters: Any) -> list[int]:
    return [task.id for task in await store.list_tasks(**filters)]


async def test_repository_filter_matches_the_whole_name_only(store: TaskStore) -> None:
    await store.add_many(
        [
            _issue("acme/widgets", 1),
            _issue("acme/widgets-old", 2),
            _issue("acme/widgets", 3),
            _issue("other/widgets", 4),
        ]
    )

    assert await _ids(store, repository="acme/widgets") == [3, 1]
    assert await _ids(store, repository="acme/widgets-old") == [2]
    assert await _ids(store, repository="acme/widget") == []
    assert await _ids(store, repository="acme/widgets", status=TaskStatus.QUEUED, limit=1) == [3]


async def test_before_pages_by_id_and_combines_with_filters(store: TaskStore) -> None:
    await store.add_many([_issue("acme/widgets", n) for n in range(1, 8)])
    await store.cancel(2)
    await store.cancel(5)

    assert await _ids(store, before=5, limit=2) == [4, 3]
    assert await _ids(store, before=1) == []
    assert await _ids(store, status=TaskStatus.CANCELLED, before=5) == [2]
    assert await _ids(store, status=TaskStatus.QUEUED, before=7, limit=3) == [6, 4, 3]


async def test_text_finds_payload_result_and_error_text_ignoring_ascii_case(
    store: TaskStore, wall: FakeWall
) -> None:
    await store.add_many(
        [
            _issue("acme/widgets", 1, "Crash in the Parser"),
            _issue("acme/widgets", 2, "100% cpu_usage"),
            _issue("acme/widgets", 3, '<script>alert("x")</script>'),
            _issue("acme/widgets", 4, "quiet"),
        ]
    )
    running = await claim_one(store)
    await store.fail(running.id, running.lease_token or "", "Agent ran out of TIME")
    done = await claim_one(store)
    await store.complete(done.id, done.lease_token or "", {"action": "escalated_for_approval"})

    assert await _ids(store, text="parser") == [1]
    assert await _ids(store, text="PARSER") == [1]
    assert await _ids(store, text="out of time") == [1]
    assert await _ids(store, text="100%") == [2]
    assert await _ids(store, text="0%") == [2]
    assert await _ids(store, text="c_u") == []  # '_' is a literal, not LIKE's wildcard
    assert await _ids(store, text="<script>") == [3]
    assert await _ids(store, text="quiet", status=TaskStatus.FAILED) == []
    assert await _ids(store, text="nothing like it") == []
    assert await _ids(store, text="escalated_for_approval") == [2]


async def test_text_search_reads_only_the_newest_window(store: TaskStore) -> None:
    await store.add(_issue("acme/widgets", 1, "needle"))
    filler = [_issue("acme/widgets", n) for n in range(2, TEXT_SEARCH_WINDOW + 2)]
    await store.add_many(filler)

    assert await _ids(store, text="needle") == []
    assert await _ids(store, text="needle", before=TEXT_SEARCH_WINDOW) == [1]


async def test_throughput_counts_endings_per_bucket(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    await store.add_many([make_task(n) for n in range(1, 6)])
    since = wall.start
    first = await claim_one(store)
    await store.complete(first.id, first.lease_token or "", {})
    wall.advance(59)
    second = await claim_one(store)
    await store.fail(second.id, second.lease_token or "", "boom")
    wall.advance(1)
    third = await claim_one(store)
    await store.complete(third.id, third.lease_token or "", {})
    await store.cancel(4)  # a cancelled task is neither throughput nor a failure

    buckets = await store.throughput(since, 60)
    assert [(b.start, b.completed, b.failed) for b in buckets] == [
        (at(since), 1, 1),
        (at(since + 60), 1, 0),
    ]
    assert await store.throughput(since + 60, 60) == buckets[1:]
    later = await store.throughput(since + 1, 60)
    assert [(b.start, b.completed, b.failed) for b in later] == [(at(since + 1), 1, 1)]
    assert [(b.completed, b.failed) for b in await store.throughput(since + 0.5, 3600)] == [(1, 1)]


async def test_throughput_forgets_a_retried_task(store: TaskStore, make_task: TaskBuilder) -> None:
    await store.add(make_task())
    task = await claim_one(store)
    await store.fail(task.id, task.lease_token or "", "boom")
    await store.retry(task.id)

    assert await store.throughput(0.0, 60) == []


@pytest.mark.parametrize("limit", [0, 1])
async def test_filters_keep_the_page_limit(store: TaskStore, limit: int) -> None:
    await store.add_many([_issue("acme/widgets", n) for n in range(1, 4)])

    assert len(await store.list_tasks(repository="acme/widgets", limit=limit)) == limit


async def test_queued_by_priority_counts_due_and_waiting_tasks(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    assert await store.queued_by_priority() == dict.fromkeys(TaskPriority, 0)
    await store.add_many(
        [make_task(1, priority=3), make_task(2, priority=3), make_task(3, priority=0)]
        + [make_task(n, priority=1) for n in range(4, 8)]
    )
    first = await claim_one(store)  # a critical one leaves the queue
    await store.retry_later(first.id, first.lease_token or "", "boom", wall.start + 600)
    running = await claim_one(store)
    await store.cancel(7)

    assert first.priority == running.priority == TaskPriority.CRITICAL
    assert await store.queued_by_priority() == {
        TaskPriority.LOW: 1,
        TaskPriority.NORMAL: 3,
        TaskPriority.HIGH: 0,
        TaskPriority.CRITICAL: 1,  # the one waiting for its retry
    }
