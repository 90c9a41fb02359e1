"""`tamma-trio tasks prune` and `tamma-trio db backup` on real SQLite files in tmp_path."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from tamma_trio.cli import main
from tamma_trio.models import NewTask
from tamma_trio.service_events import EventKind, NewServiceEvent
from tamma_trio.store.sqlite import SqliteStore

DAY = 86_400.0


def issue(number: int) -> NewTask:
    return NewTask.build(
        "issue_assigned", {"repository": "acme/widgets", "issue": {"number": number}}
    )


def days_ago(age: int) -> Callable[[], float]:
    """A wall clock ``age`` days behind the real one."""
    return lambda: time.time() - age * DAY


def seed(path: Path) -> dict[str, int]:
    """Two tasks that ended 40 days ago (one cancelled, one failed), one that ended now, one
    queued; their ids by name."""

    async def fill() -> dict[str, int]:
        ids: dict[str, int] = {}
        for name, age in (("old_cancelled", 40), ("old_failed", 40), ("recent", 0)):
            store = SqliteStore(path, clock=days_ago(age), inline=True)
            async with store:
                task, _ = await store.add(issue(len(ids) + 1))
                ids[name] = task.id
                if name == "old_failed":
                    [claimed] = await store.claim(1)
                    assert claimed.lease_token is not None
                    await store.fail(claimed.id, claimed.lease_token, "boom")
                else:
                    await store.cancel(task.id)
        async with SqliteStore(path, inline=True) as store:
            ids["queued"] = (await store.add(issue(9)))[0].id
        return ids

    return trio.run(fill)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tamma.toml"
    path.write_text(f"[service.queue.sqlite]\npath = {json.dumps(str(tmp_path / 't.db'))}\n")
    return path


def statuses(capsys: pytest.CaptureFixture[str], config: Path) -> dict[int, str]:
    capsys.readouterr()
    assert main(["tasks", "list", "--json", "--config", str(config)]) == 0
    return {task["id"]: task["status"] for task in json.loads(capsys.readouterr().out)}


def test_prune_dry_run_then_prune(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed(tmp_path / "t.db")
    argv = ["tasks", "prune", "--older-than", "30d", "--config", str(config)]
    capsys.readouterr()
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("would prune 2 completed/failed/cancelled task(s) that ended before ")
    assert len(statuses(capsys, config)) == 4
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("pruned 2 ")
    assert statuses(capsys, config) == {ids["queued"]: "queued", ids["recent"]: "cancelled"}


def test_prune_only_the_statuses_asked_for(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed(tmp_path / "t.db")
    argv = ["tasks", "prune", "--older-than", "2w", "--status", "failed", "--config", str(config)]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("pruned 1 failed task(s)")
    assert ids["old_failed"] not in statuses(capsys, config)
    assert ids["old_cancelled"] in statuses(capsys, config)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "30"], "--older-than '30' is not a number with a unit"),
        (["--older-than", "soon"], "--older-than 'soon' is not a number with a unit"),
        (["--older-than", "1d", "--status", "queued"], "'queued' is not one of"),
    ],
)
def test_prune_refuses_bad_input_and_deletes_nothing(
    tmp_path: Path,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    seed(tmp_path / "t.db")
    capsys.readouterr()
    assert main(["tasks", "prune", *args, "--config", str(config)]) == 2
    assert message in capsys.readouterr().err
    assert len(statuses(capsys, config)) == 4


def test_backup_is_a_consistent_copy_taken_while_the_store_is_open(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed(tmp_path / "t.db")
    holder = sqlite3.connect(tmp_path / "t.db")  # a daemon's open connection, mid-transaction
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE tasks SET priority = 3")
    copy = tmp_path / "backups" / "copy.db"
    copy.parent.mkdir()
    try:
        assert main(["db", "backup", str(copy), "--config", str(config)]) == 0
    finally:
        holder.rollback()
        holder.close()
    assert capsys.readouterr().out.startswith(f"backed up {tmp_path / 't.db'} to {copy} (")
    assert not Path(f"{copy}-wal").exists()  # one self-contained file
    backup_config = tmp_path / "backup.toml"
    backup_config.write_text(f"[service.queue.sqlite]\npath = {json.dumps(str(copy))}\n")
    assert statuses(capsys, backup_config) == statuses(capsys, config)
    rows = sqlite3.connect(copy).execute("SELECT DISTINCT priority FROM tasks").fetchall()
    assert rows == [(1,)]  # the uncommitted change is not in the copy
    assert set(statuses(capsys, backup_config)) == set(ids.values())


def test_backup_refuses_an_existing_target_and_other_queues(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(tmp_path / "t.db")
    target = tmp_path / "taken.db"
    target.write_text("precious")
    assert main(["db", "backup", str(target), "--config", str(config)]) == 2
    assert f"{target} already exists" in capsys.readouterr().err
    assert target.read_text() == "precious"
    memory = tmp_path / "memory.toml"
    memory.write_text('[service.queue]\ntype = "memory"\n')
    assert main(["db", "backup", str(tmp_path / "new.db"), "--config", str(memory)]) == 2
    assert "db backup copies a sqlite queue; this config uses memory" in capsys.readouterr().err
    assert not (tmp_path / "new.db").exists()


def test_backup_of_a_missing_database_says_so(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "backup", str(tmp_path / "new.db"), "--config", str(config)]) == 2
    assert f"there is no database at {tmp_path / 't.db'}" in capsys.readouterr().err


def seed_outbox(path: Path) -> None:
    """Two events of 40 days ago: one delivered, one whose delivery is dead; one pending."""

    async def fill() -> None:
        store = SqliteStore(path, clock=lambda: time.time() - 40 * DAY, inline=True)
        async with store:
            failed = NewServiceEvent(kind=EventKind.TASK_FAILED, task_id=1, reason="boom")
            for target in ("ok", "gone", "down"):
                await store.publish(failed, targets=[target])
            ok, gone, down = sorted(await store.notifications(), key=lambda note: note.id)
            await store.record_notification(ok.id, error=None)
            await store.record_notification(gone.id, error="HTTP 410", next_attempt=None)
            await store.record_notification(down.id, error="HTTP 503", next_attempt=time.time())

    trio.run(fill)


def outbox_targets(path: Path) -> list[str]:
    async def read() -> list[str]:
        async with SqliteStore(path, inline=True) as store:
            return sorted(note.target for note in await store.notifications())

    return trio.run(read)


def test_prune_takes_the_old_outbox_but_never_a_pending_delivery(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(tmp_path / "t.db")
    seed_outbox(tmp_path / "t.db")
    argv = ["tasks", "prune", "--older-than", "30d", "--config", str(config)]
    capsys.readouterr()
    assert main([*argv, "--status", "completed", "--dry-run"]) == 0
    assert "would prune 1 service event(s) and 1 notification(s)" in capsys.readouterr().out
    assert main([*argv, "--dry-run"]) == 0  # failed tasks go too: so does the dead delivery
    assert "would prune 2 service event(s) and 2 notification(s)" in capsys.readouterr().out
    assert outbox_targets(tmp_path / "t.db") == ["down", "gone", "ok"]
    assert main(argv) == 0
    assert "pruned 2 service event(s) and 2 notification(s)" in capsys.readouterr().out
    assert outbox_targets(tmp_path / "t.db") == ["down"]
