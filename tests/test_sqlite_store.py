"""What only the SQLite store promises: durability, refusing foreign files, the daemon lock,
sharing the file with the CLI, and group commit with its cancellation behaviour."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from tamma_trio.config import QueueConfig, SqliteQueueConfig
from tamma_trio.errors import LeaseLostError, StoreError, StoreLockedError
from tamma_trio.models import TaskStatus
from tamma_trio.store import MemoryStore, SqliteStore, open_store
from tamma_trio.store.sqlite_schema import APPLICATION_ID, SCHEMA_VERSION, open_database

if TYPE_CHECKING:
    from tests.store_helpers import TaskBuilder


async def open_and_close(path: Path) -> None:
    async with SqliteStore(path):
        pass


def sqlite_file(path: Path, *statements: str) -> Path:
    """A SQLite database made by someone else, closed again."""
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return path


# --- the file -------------------------------------------------------------------------------


async def test_json_columns_keep_text_and_numbers_as_given(
    tmp_path: Path, make_task: TaskBuilder
) -> None:
    """Results and events are stored as compact UTF-8 JSON and read back unchanged."""
    path = tmp_path / "tasks.db"
    result = {"action": "merged", "note": "réussi ✓ 合并", "ratio": 0.1, "big": 2**62, "none": None}
    async with SqliteStore(path) as store:
        task, _ = await store.add(make_task(5))
        [claimed] = await store.claim(1)
        await store.complete(task.id, claimed.lease_token or "", result)
        assert (await store.get(task.id)).result == result
    conn = sqlite3.connect(path)
    try:
        [(raw,)] = conn.execute("SELECT result FROM tasks WHERE id = ?", (task.id,)).fetchall()
    finally:
        conn.close()
    assert "réussi ✓ 合并" in raw and ", " not in raw


async def test_tasks_and_their_trail_survive_close_and_reopen(
    tmp_path: Path, make_task: TaskBuilder
) -> None:
    path = tmp_path / "tasks.db"
    first = SqliteStore(path, boot_id="boot-a")
    async with first:
        task, _ = await first.add(make_task(5, key="k"))
        [claimed] = await first.claim(1)
        await first.complete(task.id, claimed.lease_token or "", {"action": "pr_created"})
        await first.add(make_task(6))
        before = (await first.get(task.id), await first.events(task.id), await first.stats())

    async with SqliteStore(path, boot_id="boot-b") as second:
        assert (await second.get(task.id), await second.events(task.id)) == before[:2]
        assert (await second.stats()).by_status == before[2].by_status
        assert (await second.add(make_task(7, key="k")))[1] is False
        with pytest.raises(StoreError, match="already open"):
            async with second:
                pass
        assert (await second.get(task.id)).status == "completed"  # the refusal closed nothing

    async with first:  # the same object opens again after a close
        assert (await first.get(task.id)).status == "completed"


@pytest.mark.parametrize("start", ["missing", "empty file", "empty sqlite database"])
async def test_a_new_or_empty_file_becomes_a_store(tmp_path: Path, start: str) -> None:
    path = tmp_path / "tasks.db"
    if start == "empty file":
        path.touch()
    elif start == "empty sqlite database":
        sqlite_file(path, "PRAGMA user_version = 0")

    async with SqliteStore(path, synchronous="NORMAL") as store:
        assert await store.describe() == {
            "journal_mode": "wal",
            "synchronous": "NORMAL",
            "application_id": APPLICATION_ID,
            "schema_version": SCHEMA_VERSION,
            "schema_version_expected": SCHEMA_VERSION,
        }


def _corrupt_tamma_store(path: Path) -> None:
    open_database(path, "FULL").close()
    with path.open("r+b") as handle:  # keep the 100-byte header, smash the schema page
        handle.seek(100)
        handle.write(b"\xa5" * 3900)


FOREIGN_FILES: dict[str, tuple[str, Callable[[Path], object]]] = {
    "text file": ("not a SQLite database", lambda p: p.write_text("name,age\nann,41\n" * 20)),
    "a few bytes": ("not a SQLite database", lambda p: p.write_bytes(b"SQLi")),
    "another application's database": (
        "another application",
        lambda p: sqlite_file(p, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"),
    ),
    "claimed by another application id": (
        "another application",
        lambda p: sqlite_file(p, "PRAGMA application_id = 42"),
    ),
    "newer tamma-trio schema": (
        "newer than this tamma-trio knows",
        lambda p: sqlite_file(
            p, f"PRAGMA application_id = {APPLICATION_ID}", "PRAGMA user_version = 99"
        ),
    ),
    "corrupt store": ("corrupt", _corrupt_tamma_store),
}


@pytest.mark.parametrize("kind", sorted(FOREIGN_FILES))
@pytest.mark.parametrize("inline", [True, False], ids=["inline", "thread"])
async def test_a_file_that_is_not_ours_is_refused_and_left_untouched(
    tmp_path: Path, kind: str, inline: bool
) -> None:
    reason, make = FOREIGN_FILES[kind]
    path = tmp_path / "data.db"
    make(path)
    original = path.read_bytes()
    store = SqliteStore(path, inline=inline)

    with pytest.raises(StoreError, match=reason) as refused:
        async with store:
            pass

    assert str(path) in str(refused.value)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.db"]  # no -wal, -shm, -journal
    with pytest.raises(StoreError, match="not open"):
        await store.ping()


async def test_the_daemon_checks_the_whole_file_at_open(tmp_path: Path) -> None:
    """Damage past the catalogue passes a CLI open but stops the daemon at start."""
    path = tmp_path / "tasks.db"
    open_database(path, "FULL").close()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE forge_blobs (data BLOB)")
    conn.executemany("INSERT INTO forge_blobs VALUES (randomblob(3000))", [()] * 40)
    conn.commit()
    last_page = conn.execute("PRAGMA page_count").fetchone()[0] - 1
    conn.close()
    with path.open("r+b") as handle:
        handle.seek(last_page * 4096)
        handle.write(b"\x00\xff" * 2048)
    original = path.read_bytes()
    await open_and_close(path)  # the CLI does not look that far

    daemon = SqliteStore(path)
    daemon.lock_for_daemon()
    with pytest.raises(StoreError, match="is corrupt"):
        async with daemon:
            pass
    assert path.read_bytes() == original
    SqliteStore(path).lock_for_daemon()  # the failed open released the daemon's lock


async def test_directory_instead_of_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=str(tmp_path)):
        await open_and_close(tmp_path)


async def test_other_tables_in_our_file_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    await open_and_close(path)
    sqlite_file(path, "CREATE TABLE forge_issues (id INTEGER PRIMARY KEY)")
    await open_and_close(path)

    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM forge_issues").fetchone() == (0,)
    conn.close()


async def test_sqlite_failures_become_store_errors_naming_the_file(
    tmp_path: Path, make_task: TaskBuilder
) -> None:
    path = tmp_path / "tasks.db"
    async with SqliteStore(path, inline=True) as store:
        sqlite_file(path, "DROP TRIGGER task_counts_insert", "DROP TABLE task_events")
        with pytest.raises(StoreError, match=f"{path}.*no such table: task_events") as failed:
            await store.add(make_task())
        assert isinstance(failed.value.__cause__, sqlite3.OperationalError)
        assert await store.list_tasks() == []


def test_the_synchronous_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="FULL or NORMAL"):
        SqliteStore("x.db", synchronous="OFF")  # type: ignore[arg-type]


# --- one file, several users ----------------------------------------------------------------


async def test_the_cli_reads_and_writes_while_the_daemon_runs(
    tmp_path: Path, make_task: TaskBuilder
) -> None:
    path = tmp_path / "tasks.db"
    daemon = SqliteStore(path, boot_id="daemon")
    daemon.lock_for_daemon()
    async with daemon, SqliteStore(path, inline=True, boot_id="cli") as cli:
        task, _ = await cli.add(make_task(actor="cli"))
        [claimed] = await daemon.claim(5)
        assert claimed.id == task.id
        assert (await cli.get(task.id)).status == "in_progress"

        await cli.cancel(task.id, actor="cli")

        with pytest.raises(LeaseLostError):
            await daemon.complete(task.id, claimed.lease_token or "", {})
        assert await daemon.extend_leases([claimed.lease_token or ""], 60) == set()
        assert (await daemon.stats()).by_status[TaskStatus.CANCELLED] == 1


async def test_writers_on_two_connections_lose_nothing_and_double_nothing(
    tmp_path: Path, make_task: TaskBuilder
) -> None:
    """The CLI adding tasks while 10 daemon workers claim: BEGIN IMMEDIATE + busy_timeout.

    Each add is announced on a channel (as an enqueue wakes the poller), so every claim made
    for an announcement must find a task.
    """
    path = tmp_path / "tasks.db"
    done: list[int] = []
    daemon, cli = SqliteStore(path), SqliteStore(path)
    announce, announcements = trio.open_memory_channel[None](100)

    async def intake() -> None:
        async with announce:
            for n in range(1, 101):
                await cli.add(make_task(n))
                await announce.send(None)

    async def worker() -> None:
        async for _ in announcements:
            [task] = await daemon.claim(1)
            await daemon.complete(task.id, task.lease_token or "", {})
            done.append(task.id)

    async with daemon, cli:
        async with announcements, trio.open_nursery() as nursery:
            nursery.start_soon(intake)
            for _ in range(10):
                nursery.start_soon(worker)
        assert sorted(done) == list(range(1, 101))
        assert (await cli.stats()).by_status[TaskStatus.COMPLETED] == 100


def test_a_second_daemon_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    first, second = SqliteStore(path), SqliteStore(path)
    first.lock_for_daemon()

    with pytest.raises(StoreLockedError, match=f"another tamma-trio daemon is using {path}$"):
        second.lock_for_daemon()

    trio.run(first.aclose)
    second.lock_for_daemon()
    trio.run(second.aclose)


def test_a_daemon_in_another_process_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    holder = (
        "import sys\nfrom tamma_trio.store import SqliteStore\n"
        f"SqliteStore({str(path)!r}).lock_for_daemon()\n"
        "print('locked', flush=True)\nsys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as other:
        assert other.stdout is not None and other.stdin is not None
        assert other.stdout.readline() == "locked\n"
        with pytest.raises(StoreLockedError):
            SqliteStore(path).lock_for_daemon()
        other.stdin.close()
        assert other.wait(timeout=30) == 0

    SqliteStore(path).lock_for_daemon()  # the process is gone, so is its lock
    assert "pid" in Path(f"{path}.lock").read_text()


# --- MockClock: inline SQL on the trio thread -----------------------------------------------


async def test_inline_store_follows_the_mock_clock(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, make_task: TaskBuilder
) -> None:
    wall_offset = 1_800_000_000.0

    def clock() -> float:
        return wall_offset + trio.current_time()

    async with SqliteStore(tmp_path / "tasks.db", inline=True, clock=clock) as store:
        task, _ = await store.add(make_task())
        [claimed] = await store.claim(1)
        await store.retry_later(task.id, claimed.lease_token or "", "flaky", clock() + 60)

        due = await store.next_due()
        assert due is not None
        await trio.sleep_until(due - wall_offset)  # what the retry timer does

        assert trio.current_time() == pytest.approx(60)
        assert [t.id for t in await store.claim(1)] == [task.id]


# --- choosing a backend ---------------------------------------------------------------------


def test_open_store_builds_the_configured_backend(tmp_path: Path) -> None:
    memory = open_store(QueueConfig(type="memory"), boot_id="b")
    assert isinstance(memory, MemoryStore) and memory.boot_id == "b"

    config = QueueConfig(sqlite=SqliteQueueConfig(path=tmp_path / "q.db", synchronous="NORMAL"))
    sqlite = open_store(config)
    assert isinstance(sqlite, SqliteStore)
    assert (sqlite.path, sqlite.synchronous) == (tmp_path / "q.db", "NORMAL")
    assert not (tmp_path / "q.db").exists()  # built, not opened
