"""One row another process or an older version wrote badly fails alone; nothing else wedges.

Real SQLite files, damaged through a second connection (tests/faults.py). The store reads such a
row as a Task saying why (``undecodable``); the daemon fails it unrun while the rest run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from tamma_trio.log import Redactor
from tamma_trio.models import TaskStatus
from tamma_trio.service import trio_wall_clock
from tamma_trio.status import CLAIM_FAILURES_NOT_READY
from tamma_trio.store.base import TaskStore
from tamma_trio.store.sqlite import SqliteStore
from tamma_trio.web import create_app
from tamma_trio.web.health import not_ready_reason
from tests.faults import POISONS, FailingStore, poison_events, poison_task
from tests.service_helpers import Stores, event_kinds, fake, pr_task, running, status_is, wait_for
from tests.store_helpers import FakeWall
from tests.web_fixtures import make_deps

COLUMNS_AND_POISONS = [
    ("payload", "invalid_utf8"),
    ("payload", "not_json"),
    ("payload", "not_an_object"),
    ("progress", "not_json"),
    ("result", "invalid_utf8"),
    ("subject", "invalid_utf8"),
]


@pytest.fixture(params=["inline", "thread"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    inline = request.param == "inline"
    async with SqliteStore(tmp_path / "tasks.db", clock=FakeWall(), inline=inline) as opened:
        yield opened


async def add_three(store: TaskStore) -> list[int]:
    return [(await store.add(pr_task(number)))[0].id for number in (1, 2, 3)]


@pytest.mark.parametrize(("column", "how"), COLUMNS_AND_POISONS)
async def test_a_damaged_row_is_claimed_listed_and_shown_with_the_reason(
    store: SqliteStore, column: str, how: str
) -> None:
    ids = await add_three(store)
    phrase = poison_task(store.path, ids[1], column, how)

    claimed = await store.claim(10)
    listed = await store.list_tasks()
    shown = await store.get(ids[1])

    assert [t.id for t in claimed] == ids
    assert [t.undecodable is None for t in claimed] == [True, False, True]
    for task in (claimed[1], listed[1], shown):
        assert task.undecodable is not None
        assert task.undecodable.startswith(f"{column}: ") and phrase in task.undecodable
        assert task.payload == {} and task.progress == {}
    assert shown.public()["undecodable"] == shown.undecodable
    assert "undecodable" not in claimed[0].public()
    assert [kind for kind in await event_kinds(store, ids[1])] == ["enqueued", "claimed"]


async def test_an_event_detail_that_cannot_be_read_says_so(store: SqliteStore) -> None:
    ids = await add_three(store)
    poison_events(store.path, ids[0])

    [event] = await store.events(ids[0])

    assert event.kind == "enqueued"
    assert event.detail == {"undecodable": "detail: invalid UTF-8 (invalid start byte at byte 2)"}


def sqlite_stores(tmp_path: Path) -> Stores:
    return Stores("sqlite", tmp_path / "tasks.db", trio_wall_clock())


async def test_39_tasks_run_while_the_damaged_one_fails_alone(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    stores = sqlite_stores(tmp_path)
    store = await stores.open()
    try:
        ids = [(await store.add(pr_task(number)))[0].id for number in range(1, 41)]
        poison_task(stores.path, ids[0], "payload", "invalid_utf8")
        engine = fake()
        async with running(stores, store, engine, max_concurrent_tasks=4) as daemon:
            for task_id in ids:
                await status_is(store, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED)
            assert daemon.status.ready
        damaged = await store.get(ids[0])
        others = [await store.get(task_id) for task_id in ids[1:]]
    finally:
        await stores.close()

    assert {t.status for t in others} == {TaskStatus.COMPLETED}
    assert damaged.status is TaskStatus.FAILED and damaged.attempts == 1
    assert damaged.error is not None
    assert damaged.error.startswith("the stored task cannot be read: payload: invalid UTF-8")
    assert daemon.status.failed == 1 and daemon.status.completed == 39
    assert not any(pr.endswith("#1") for _step, pr in engine.calls)


async def test_a_damaged_orphan_does_not_stop_the_daemon_from_starting(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    stores = sqlite_stores(tmp_path)
    store = await stores.open(boot_id="crashed")
    try:
        task, _ = await store.add(pr_task())
        await store.claim(1)
        poison_task(stores.path, task.id, "payload", "not_json")
        restarted = await stores.open()
        async with running(stores, restarted, fake()):
            await status_is(restarted, task.id, TaskStatus.FAILED)
        kinds = await event_kinds(restarted, task.id)
    finally:
        await stores.close()
    assert kinds == ["enqueued", "claimed", "orphan_recovered", "claimed", "failed"]


async def test_the_api_lists_and_shows_a_damaged_task(
    autojump_clock: MockClock, store: SqliteStore
) -> None:
    ids = await add_three(store)
    poison_task(store.path, ids[2], "payload", "not_json")
    deps, _ = make_deps(store)
    client = create_app(deps).test_client()

    listed = await client.get("/api/tasks")
    shown = await client.get(f"/api/tasks/{ids[2]}")

    assert listed.status_code == 200 and shown.status_code == 200
    rows = (await listed.get_json())["tasks"]
    assert [row["id"] for row in rows] == ids[::-1]
    assert rows[0]["undecodable"].startswith("payload: not JSON")
    assert "undecodable" not in rows[1]
    assert (await shown.get_json())["undecodable"].startswith("payload: not JSON")


async def test_ready_turns_503_with_a_reason_while_claims_keep_failing(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    stores = sqlite_stores(tmp_path)
    store = await stores.open()
    faulty = FailingStore(store, failing={"claim"})
    try:
        async with running(stores, faulty.as_store(), fake(), poll_interval=1) as daemon:
            await wait_for(lambda: _refused(faulty, CLAIM_FAILURES_NOT_READY))
            assert not daemon.status.ready
            reason = not_ready_reason(daemon.status, Redactor())
            assert reason == (
                f"claiming tasks failed {CLAIM_FAILURES_NOT_READY} times in a row: "
                "injected fault: claim failed"
            )
            faulty.failing.clear()
            task = await daemon.enqueue(pr_task())
            await status_is(store, task.id, TaskStatus.COMPLETED)
            assert daemon.status.ready and not_ready_reason(daemon.status, Redactor()) is None
    finally:
        await stores.close()


async def _refused(faulty: FailingStore, times: int) -> bool:
    await trio.lowlevel.checkpoint()
    return faulty.refused.get("claim", 0) >= times


def test_every_poison_has_a_phrase() -> None:
    assert all(phrase for _sql, phrase in POISONS.values())
