"""A full disk and a locked database under the SQLite store: writes fail with StoreError, nothing
acknowledged is lost, ping reports it (so /ready turns 503), and a write waits at most one busy
timeout. Real files and real SQLite limits from the fault kit (tests/faults.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import outcome
import pytest

from tamma_trio.errors import StoreError
from tamma_trio.models import TaskStatus
from tamma_trio.store.sqlite import SqliteStore
from tamma_trio.store.sqlite_health import BusyBudget, WriteHealth
from tamma_trio.web import create_app
from tests.faults import DiskLimit, hold_write_lock
from tests.service_helpers import pr_task
from tests.web_fixtures import LOOPBACK, make_deps


@pytest.fixture
def disk() -> Iterator[DiskLimit]:
    limit = DiskLimit().install()
    yield limit
    limit.uninstall()


@pytest.fixture(params=["thread", "inline"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    inline = request.param == "inline"
    async with SqliteStore(tmp_path / "tasks.db", inline=inline, busy_timeout=0.2) as opened:
        yield opened


async def add_until_full(store: SqliteStore, most: int = 2000) -> tuple[list[int], StoreError]:
    stored: list[int] = []
    for number in range(1, most):
        try:
            task, _ = await store.add(pr_task(number))
        except StoreError as exc:
            return stored, exc
        stored.append(task.id)
    raise AssertionError(f"{most} tasks fitted: the disk never filled")


async def test_a_full_disk_refuses_writes_loses_nothing_and_recovers(
    store: SqliteStore, disk: DiskLimit
) -> None:
    await store.add(pr_task(100_000))
    disk.fill()

    stored, error = await add_until_full(store)

    assert "database or disk is full" in str(error)
    with pytest.raises(StoreError, match=r"writes are failing: .*database or disk is full"):
        await store.ping()
    assert [t.id for t in await store.list_tasks(limit=5000)][: len(stored)] == stored[::-1]
    with pytest.raises(StoreError):  # still full: the claim's writes fail too
        await store.claim(1)
    assert (await store.stats()).by_status[TaskStatus.IN_PROGRESS] == 0

    disk.free()
    await store.add(pr_task(99_999))
    await store.ping()  # a write went through: ready again


async def test_a_locked_database_refuses_writes_and_recovers(store: SqliteStore) -> None:
    await store.add(pr_task(1))
    with hold_write_lock(store.path):
        with pytest.raises(StoreError, match="database is locked"):
            await store.add(pr_task(2))
        with pytest.raises(StoreError, match=r"writes are failing: .*locked"):
            await store.ping()
        assert len(await store.list_tasks()) == 1  # reads still work (WAL)
    await store.add(pr_task(3))
    await store.ping()


async def test_the_api_answers_503_with_retry_after_while_the_database_is_locked(
    store: SqliteStore,
) -> None:
    deps, wakes = make_deps(store)
    client = create_app(deps).test_client()
    body = {"type": "pr_review_requested", "payload": pr_task(5).payload}
    with hold_write_lock(store.path):
        response = await client.post("/api/tasks", json=body, scope_base=LOOPBACK)
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert (await response.get_json())["error"] == "store_unavailable"
    assert await store.list_tasks() == [] and wakes.count == 0


# --- the busy budget, on a real connection with a hand-driven clock ---------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeJob:
    def __init__(self, queued_at: float, write: bool = True) -> None:
        self.queued_at = queued_at
        self.write = write
        self.outcome: outcome.Outcome[object] | None = None


def busy_ms(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA busy_timeout").fetchone()[0])


def test_a_job_gets_only_what_is_left_of_its_busy_timeout() -> None:
    clock = Clock()
    budget = BusyBudget(2.0, clock)
    conn = sqlite3.connect(":memory:", timeout=2.0)
    early, late = FakeJob(100.0), FakeJob(101.0)
    clock.now = 101.5  # early queued behind a batch that waited 1.5 s on the lock

    assert budget.admit(conn, [early, late], "db") == [early, late]
    assert busy_ms(conn) == 500  # the oldest job's remainder, not a fresh 2 s


def test_a_job_whose_busy_timeout_is_spent_fails_without_waiting_again() -> None:
    clock = Clock()
    budget = BusyBudget(2.0, clock)
    conn = sqlite3.connect(":memory:", timeout=2.0)
    spent, fresh = FakeJob(100.0), FakeJob(101.9)
    clock.now = 102.0

    assert budget.admit(conn, [spent, fresh], "db") == [fresh]
    assert isinstance(spent.outcome, outcome.Error)
    assert str(spent.outcome.error) == (
        "task store db: busy for 2 s (locked by another process, or the disk is slow)"
    )
    assert busy_ms(conn) == 1900


def test_write_health_clears_on_a_write_that_changed_something() -> None:
    clock = Clock()
    health = WriteHealth(clock)
    failed = FakeJob(0.0)
    failed.outcome = outcome.Error(StoreError("task store db: database or disk is full"))
    health.after_batch([failed], changed=False)
    with pytest.raises(StoreError, match="writes are failing"):
        health.check()
    health.after_batch([FakeJob(0.0)], changed=False)  # an empty claim proves nothing
    with pytest.raises(StoreError):
        health.check()
    health.after_batch([FakeJob(0.0)], changed=True)
    health.check()


def test_write_health_recovers_after_the_hold_with_no_writes() -> None:
    clock = Clock()
    health = WriteHealth(clock)
    failed = FakeJob(0.0)
    failed.outcome = outcome.Error(StoreError("task store db: database is locked"))
    health.after_batch([failed], changed=False)
    clock.now += 29.9
    with pytest.raises(StoreError):
        health.check()
    clock.now += 0.1
    health.check()
