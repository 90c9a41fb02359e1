"""Retention in the daemon, under MockClock: finished tasks go after ``days``, failed ones after
``failed_days``, queued ones never; a failing sweep is logged and the daemon keeps going."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from tamma_trio.config import Config, RetentionConfig
from tamma_trio.errors import StoreError, TaskNotFoundError
from tamma_trio.models import TaskStatus
from tamma_trio.retention import DAY, Retention
from tamma_trio.service import Service, trio_wall_clock
from tamma_trio.service_events import EventKind, NewServiceEvent, PrunedEvents
from tamma_trio.status import ServiceState
from tamma_trio.store.base import TaskStore
from tamma_trio.store.memory import MemoryStore
from tests.service_helpers import STORE_KINDS, Stores, fake, pr_task, status_is, zero


@pytest.fixture(params=STORE_KINDS)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    stores = Stores(request.param, tmp_path / "tasks.db", trio_wall_clock())
    yield stores
    await stores.close()


def config(**retention: Any) -> Config:
    return Config.model_validate(
        {
            "service": {
                "health_check": {"enabled": False},
                "metrics": {"enabled": False},
                "poll_interval": 60,
                "max_retries": 0,
            },
            "retention": {"days": 30, "failed_days": 90, "interval": 3600, **retention},
        }
    )


async def gone(store: TaskStore, task_id: int) -> bool:
    try:
        await store.get(task_id)
    except TaskNotFoundError:
        return True
    return False


async def test_the_daemon_prunes_finished_tasks_after_their_retention(
    autojump_clock: MockClock, stores: Stores
) -> None:
    store = await stores.open()
    engine = fake(failures={"merge_pr": {"times": 1, "retryable": False}})
    # Retention in minutes: every virtual second costs a status snapshot, so days would be slow.
    retention = config(days=100 / DAY, failed_days=300 / DAY, interval=10)
    daemon = Service(retention, store, lambda _: engine, wall=stores.wall, rng=zero)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        failed = await daemon.enqueue(pr_task(1))
        await status_is(store, failed.id, TaskStatus.FAILED)
        done = await daemon.enqueue(pr_task(2))
        await status_is(store, done.id, TaskStatus.COMPLETED)
        await trio.sleep(85)
        assert not await gone(store, done.id)
        await trio.sleep(30)
        assert await gone(store, done.id) and not await gone(store, failed.id)
        await trio.sleep(200)
        assert await gone(store, failed.id)
        assert daemon.retention.pruned == 2
        daemon.request_shutdown()
        await daemon.state.wait_value(ServiceState.STOPPED)


class BrokenStore(MemoryStore):
    """A store whose prune fails until ``healed``."""

    healed = False

    async def prune(self, *args: Any, **kwargs: Any) -> list[int]:
        if not self.healed:
            raise StoreError("database is locked")
        return await super().prune(*args, **kwargs)


async def test_a_failed_sweep_is_logged_and_tried_again(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    wall = trio_wall_clock()
    async with BrokenStore(clock=wall) as store:
        task, _ = await store.add(pr_task(1))
        await store.cancel(task.id)
        retention = Retention(store, RetentionConfig(days=1, interval=60), wall)
        await trio.sleep(2 * DAY)
        async with trio.open_nursery() as nursery:
            await nursery.start(retention.run)
            assert (
                "retention: pruning failed, trying again in 60 s: database is locked" in caplog.text
            )
            store.healed = True
            await trio.sleep(61)
            assert await gone(store, task.id) and retention.pruned == 1
            nursery.cancel_scope.cancel()


async def test_a_large_backlog_goes_in_batches(autojump_clock: MockClock) -> None:
    wall = trio_wall_clock()
    async with MemoryStore(clock=wall) as store:
        for number in range(1, 26):
            task, _ = await store.add(pr_task(number))
            await store.cancel(task.id)
        calls: list[int] = []
        original = store.prune

        async def counting(*args: Any, **kwargs: Any) -> list[int]:
            ids = await original(*args, **kwargs)
            calls.append(len(ids))
            return ids

        store.prune = counting  # type: ignore[method-assign]
        await trio.sleep(2 * DAY)
        retention = Retention(store, RetentionConfig(days=1, batch_size=10), wall)
        assert await retention.sweep() == 25
        assert calls == [10, 10, 5, 0]  # the last call is the failed tasks' period
        assert (await store.stats()).by_status[TaskStatus.CANCELLED] == 0


async def test_the_outbox_follows_the_two_periods_and_pending_deliveries_stay(
    autojump_clock: MockClock, stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "tamma_trio.retention")
    store = await stores.open()
    failed = NewServiceEvent(kind=EventKind.TASK_FAILED, task_id=1, reason="tests failed")
    delivered = await store.publish(failed, targets=["ok"])
    dead = await store.publish(failed, targets=["gone"])
    pending = await store.publish(failed, targets=["down"])
    ok, gone, down = sorted(await store.notifications(), key=lambda note: note.id)
    await store.record_notification(ok.id, error=None)
    await store.record_notification(gone.id, error="HTTP 410", next_attempt=None)
    await store.record_notification(down.id, error="HTTP 503", next_attempt=stores.wall() + DAY)
    retention = Retention(store, RetentionConfig(days=1, failed_days=3), stores.wall)

    await trio.sleep(2 * DAY)
    await retention.sweep()
    assert retention.pruned_events == PrunedEvents(events=1, notifications=1)
    assert "retention: pruned 1 service event(s) and 1 delivered or dead" in caplog.text
    assert [event.id for event in await store.service_events()] == [dead.id, pending.id]
    await trio.sleep(2 * DAY)
    await retention.sweep()
    assert [event.id for event in await store.service_events()] == [pending.id]
    [still] = await store.notifications()
    assert still.id == down.id and delivered.id < pending.id
