"""The daemon's service events, under MockClock on the memory store: what a task's endings
publish (completed, retrying, failed, escalated, escalation required), the service's start and
stop, and a quarantined task after crashes; each with its task, subject and reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from tamma_trio.models import TaskStatus
from tamma_trio.service_events import EventKind, ServiceEvent
from tamma_trio.store.base import TaskStore
from tests.service_helpers import (
    REPO,
    Stores,
    fake,
    issue_task,
    pr_task,
    running,
    status_is,
)

WALL = 1_767_225_600.0


def stores_for(tmp_path: Path) -> Stores:
    return Stores("memory", tmp_path / "unused.db", lambda: WALL + trio.current_time())


async def published(store: TaskStore) -> list[ServiceEvent]:
    return await store.service_events(limit=1000)


def kinds(events: list[ServiceEvent]) -> list[str]:
    return [event.kind.value for event in events]


async def test_a_completed_task(autojump_clock: Any, tmp_path: Path) -> None:
    stores = stores_for(tmp_path)
    store = await stores.open()
    async with running(stores, store, fake()) as daemon:
        task, _ = await store.add(pr_task(12))
        daemon.poller.wake()
        await status_is(store, task.id, TaskStatus.COMPLETED)
    events = await published(store)
    assert kinds(events) == ["service.started", "task.completed", "service.stopped"]
    done = events[1]
    assert (done.task_id, done.task_type, done.repository) == (task.id, "pr_review_requested", REPO)
    assert (done.subject, done.reason) == (f"{REPO}#!12", "merged")
    assert [e.id for e in events] == sorted(e.id for e in events)


async def test_retries_then_failure_then_escalation(autojump_clock: Any, tmp_path: Path) -> None:
    stores = stores_for(tmp_path)
    store = await stores.open()
    engine = fake(failures={"monitor_pr": {"retryable": True}})
    async with running(stores, store, engine, retry_delay=1) as daemon:
        task, _ = await store.add(pr_task(5, max_retries=1))
        daemon.poller.wake()
        await status_is(store, task.id, TaskStatus.FAILED)
    events = [e for e in await published(store) if e.task_id == task.id]
    assert kinds(events) == ["task.retrying", "task.failed", "task.escalated"]
    retrying, failed, escalated = events
    assert retrying.detail["attempts"] == 1 and retrying.detail["retry_in"] > 0
    assert failed.reason == escalated.reason and failed.reason is not None
    assert failed.detail == {"code": "fake_failure", "attempts": 2}
    assert escalated.detail["notified"] is True


async def test_a_plan_that_needs_approval(autojump_clock: Any, tmp_path: Path) -> None:
    stores = stores_for(tmp_path)
    store = await stores.open()
    async with running(stores, store, fake(complexity="high")) as daemon:
        task, _ = await store.add(issue_task(9))
        daemon.poller.wake()
        await status_is(store, task.id, TaskStatus.COMPLETED)
    events = [e for e in await published(store) if e.task_id == task.id]
    assert kinds(events) == ["task.completed", "escalation.required"]
    assert events[0].reason == "escalated_for_approval"
    assert events[1].reason is not None and "complexity high" in events[1].reason
    assert events[1].subject == f"{REPO}#9"


async def test_a_quarantined_task(autojump_clock: Any, tmp_path: Path) -> None:
    stores = stores_for(tmp_path)
    first = await stores.open(boot_id="boot-1")
    task, _ = await first.add(pr_task(3))
    for boot in ("boot-2", "boot-3", "boot-4"):  # three crashes with the task in progress
        crashed = await stores.open(boot_id=boot)
        await crashed.recover_orphans()
        await crashed.claim(1)
    store = await stores.open(boot_id="boot-5")
    async with running(stores, store, fake()):
        await status_is(store, task.id, TaskStatus.FAILED)
    events = [e for e in await published(store) if e.task_id == task.id]
    assert kinds(events) == ["task.quarantined", "task.escalated"]
    assert events[0].reason is not None and "crash" in events[0].reason
    assert EventKind.SERVICE_STARTED in [e.kind for e in await published(store)]
