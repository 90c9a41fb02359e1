"""The TaskStore contract, housekeeping: ``prune`` deletes old finished tasks and their events.

Runs against every backend of tests.store_helpers.STORE_BACKENDS.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tamma_trio.errors import TaskNotFoundError
from tamma_trio.models import TaskStatus
from tamma_trio.store.base import TaskStore
from tamma_trio.store.sqlite import SqliteStore
from tests.store_helpers import claim_one

if TYPE_CHECKING:
    from tests.store_helpers import FakeWall, TaskBuilder

DAY = 86_400.0
FINISHED = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


async def finish(store: TaskStore, make_task: TaskBuilder, number: int, how: TaskStatus) -> int:
    """A task of issue ``number`` that ended ``how`` now."""
    task, _ = await store.add(make_task(number, key=f"k{number}"))
    if how is TaskStatus.CANCELLED:
        await store.cancel(task.id)
        return task.id
    claimed = await claim_one(store)
    assert claimed.lease_token is not None
    if how is TaskStatus.COMPLETED:
        await store.complete(claimed.id, claimed.lease_token, {"action": "merged"})
    else:
        await store.fail(claimed.id, claimed.lease_token, "boom")
    return task.id


async def test_prune_deletes_old_finished_tasks_oldest_first_with_their_events(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    old_failed = await finish(store, make_task, 1, TaskStatus.FAILED)
    wall.advance(10)
    old_done = await finish(store, make_task, 2, TaskStatus.COMPLETED)
    wall.advance(10)
    old_cancelled = await finish(store, make_task, 3, TaskStatus.CANCELLED)
    cutoff = wall.now + 1
    wall.advance(DAY)
    young = await finish(store, make_task, 4, TaskStatus.COMPLETED)
    queued, _ = await store.add(make_task(5))

    assert await store.prune(cutoff, FINISHED, 2) == [old_failed, old_done]
    assert await store.prune(cutoff, FINISHED, 100) == [old_cancelled]
    assert await store.prune(cutoff, FINISHED, 100) == []
    for gone in (old_failed, old_done, old_cancelled):
        with pytest.raises(TaskNotFoundError):
            await store.get(gone)
        with pytest.raises(TaskNotFoundError):
            await store.events(gone)
    assert [t.id for t in await store.list_tasks()] == [queued.id, young]
    stats = await store.stats()
    assert stats.by_status[TaskStatus.COMPLETED] == 1 and stats.by_status[TaskStatus.FAILED] == 0
    assert stats.queue_depth == 1


async def test_prune_keeps_the_statuses_it_was_not_given(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    failed = await finish(store, make_task, 1, TaskStatus.FAILED)
    done = await finish(store, make_task, 2, TaskStatus.COMPLETED)
    wall.advance(DAY)
    assert await store.prune(wall.now, [TaskStatus.COMPLETED], 10) == [done]
    assert (await store.get(failed)).status is TaskStatus.FAILED


async def test_a_dry_run_names_the_tasks_and_deletes_nothing(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    done = await finish(store, make_task, 1, TaskStatus.COMPLETED)
    wall.advance(DAY)
    assert await store.prune(wall.now, FINISHED, 10, dry_run=True) == [done]
    assert (await store.get(done)).status is TaskStatus.COMPLETED
    assert len(await store.events(done)) == 3


async def test_a_pruned_key_can_be_used_again(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    done = await finish(store, make_task, 1, TaskStatus.COMPLETED)
    wall.advance(DAY)
    assert await store.prune(wall.now, FINISHED, 10) == [done]
    again, created = await store.add(make_task(1, key="k1"))
    assert created and again.id != done


async def test_a_retried_task_is_not_finished_any_more(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    failed = await finish(store, make_task, 1, TaskStatus.FAILED)
    await store.retry(failed)
    wall.advance(DAY)
    assert await store.prune(wall.now, FINISHED, 10) == []


@pytest.mark.parametrize(
    ("statuses", "limit", "message"),
    [
        ([TaskStatus.QUEUED], 10, "only finished tasks can be pruned, not queued"),
        ([TaskStatus.COMPLETED, TaskStatus.IN_PROGRESS], 10, "not in_progress"),
        ([TaskStatus.COMPLETED], 0, "limit must be at least 1"),
    ],
)
async def test_unfinished_statuses_and_a_zero_limit_are_refused(
    store: TaskStore,
    make_task: TaskBuilder,
    wall: FakeWall,
    statuses: list[TaskStatus],
    limit: int,
    message: str,
) -> None:
    task, _ = await store.add(make_task(1))
    wall.advance(DAY)
    with pytest.raises(ValueError, match=message):
        await store.prune(wall.now, statuses, limit)
    assert (await store.get(task.id)).status is TaskStatus.QUEUED


async def test_sqlite_hands_freed_pages_back_to_the_file_system(
    tmp_path: Path, make_task: TaskBuilder, wall: FakeWall
) -> None:
    path = tmp_path / "big.db"
    # Leaving the block closes the store: the last close checkpoints the WAL into the file.
    async with SqliteStore(path, clock=wall, inline=True) as store:
        padding = "x" * 4000
        news = [make_task(n, key=f"k{n}") for n in range(1, 301)]
        for new in news:
            new.payload["padding"] = padding
        added = await store.add_many(news)
        for task, _ in added:
            await store.cancel(task.id)
        await store.add(make_task(999))
        full = path.stat().st_size + Path(f"{path}-wal").stat().st_size
        wall.advance(DAY)
        assert len(await store.prune(wall.now, FINISHED, 1000)) == 300
    assert path.stat().st_size < full / 4
