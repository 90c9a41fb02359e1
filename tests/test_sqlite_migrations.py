"""Schema migrations of the SQLite store keep what a file already holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tamma_trio.models import NewTask, TaskPriority, TaskStatus, issue_subject, pull_subject
from tamma_trio.store import SqliteStore
from tamma_trio.store.sqlite_schema import APPLICATION_ID, MIGRATIONS


def version_one_file(path: Path) -> None:
    """A store file as the first release wrote it, with tasks in three statuses."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    insert = """INSERT INTO tasks (type, priority, payload, status, max_retries, not_before,
        created_at, subject) VALUES ('issue_assigned', ?, ?, ?, 3, 0, 0, ?)"""
    rows = [
        (3, "queued", 1),
        (3, "queued", 2),
        (1, "queued", 3),
        (1, "completed", 4),
        (0, "failed", 5),
    ]
    for priority, status, number in rows:
        payload = f'{{"repository": "acme/widgets", "issue": {{"number": {number}}}}}'
        conn.execute(insert, (priority, payload, status, f"acme/widgets#{number}"))
    conn.close()


async def test_version_one_counts_survive_the_move_to_counts_by_priority(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    version_one_file(path)
    store = SqliteStore(path, inline=True)
    async with store:
        stats = await store.stats()
        assert stats.by_status[TaskStatus.QUEUED] == 3
        assert stats.by_status[TaskStatus.COMPLETED] == stats.by_status[TaskStatus.FAILED] == 1
        assert await store.queued_by_priority() == {
            TaskPriority.LOW: 0,
            TaskPriority.NORMAL: 1,
            TaskPriority.HIGH: 0,
            TaskPriority.CRITICAL: 2,
        }
        payload = {"repository": "acme/widgets", "issue": {"number": 9}}
        await store.add(NewTask.build("issue_assigned", payload, priority=2))
        assert (await store.queued_by_priority())[TaskPriority.HIGH] == 1  # triggers follow
        assert [t.id for t in await store.list_tasks(repository="acme/widgets", limit=2)] == [6, 5]


async def test_pull_request_tasks_stored_before_take_the_pull_request_subject(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tasks.db"
    store = SqliteStore(path, inline=True)
    async with store:
        pull, _ = await store.add(NewTask.build("pr_review_requested", pull_payload(5)))
        issue, _ = await store.add(NewTask.build("issue_assigned", issue_payload(5)))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE tasks SET subject = 'acme/widgets#5'")  # as an older release stored it
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    conn.close()

    async with SqliteStore(path, inline=True) as store:
        assert [t.id for t in await store.tasks_of_subject(pull_subject("acme/widgets", 5))] == [
            pull.id
        ]
        assert [t.id for t in await store.tasks_of_subject(issue_subject("acme/widgets", 5))] == [
            issue.id
        ]


def pull_payload(number: int) -> dict[str, object]:
    return {"repository": "acme/widgets", "pull_request": {"number": number}}


def issue_payload(number: int) -> dict[str, object]:
    return {"repository": "acme/widgets", "issue": {"number": number}}
