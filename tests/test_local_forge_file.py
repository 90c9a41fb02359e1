"""The local forge's own SQLite file: its mark, its versions, and the one-time move of the rows
older installs kept inside the task database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tamma_trio.engine.forge.local_db import ForgeDb
from tamma_trio.engine.forge.local_schema import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
    TASK_STORE_APPLICATION_ID,
)
from tamma_trio.errors import EngineError
from tamma_trio.store.sqlite import SqliteStore
from tests.workflow_helpers import REPO


def pragma(path: Path, name: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        conn.close()


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall()
    finally:
        conn.close()
    return {str(row[0]) for row in rows if not str(row[0]).startswith("sqlite_")}


def old_forge_tables(path: Path, repository: str = REPO) -> None:
    """Write the forge's tables and rows into ``path`` as releases before its own file did:
    the same tables, created in whatever file the forge was given, with no version."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in MIGRATIONS[1]:
            if "forge_meta" not in statement:
                conn.execute(statement)
        item = (repository, 1, "issue", "Old issue", "b", "open", "alice", "t")
        conn.execute("INSERT INTO forge_items VALUES (?, ?, ?, ?, ?, ?, ?, ?)", item)
        conn.execute("INSERT INTO forge_labels VALUES (?, 1, 'tamma')", (repository,))
        conn.execute(
            "INSERT INTO forge_comments (id, repository, number, author, body, created_at)"
            " VALUES (7, ?, 1, 'alice', 'a comment', 't')",
            (repository,),
        )
    finally:
        conn.close()


async def old_install(tmp_path: Path, repository: str = REPO) -> Path:
    """A task database of an older install, with the forge's rows inside it."""
    store_file = tmp_path / "tamma.db"
    async with SqliteStore(store_file):
        pass
    old_forge_tables(store_file, repository)
    return store_file


async def test_rows_in_the_task_database_move_to_the_forge_file_once(tmp_path: Path) -> None:
    store_file = await old_install(tmp_path)
    forge_file = tmp_path / "tamma.forge.db"

    db = ForgeDb(forge_file, task_database=store_file)
    try:
        item = db.item(REPO, 1)
        assert item is not None and (item.title, item.labels) == ("Old issue", ("tamma",))
        assert [(c.id, c.body) for c in db.comments(REPO, 1)] == [(7, "a comment")]
        assert db.add_issue(REPO, "New", "", "bob") == 2  # one number sequence, continued
        assert db.add_comment(REPO, 1, "bob", "later") == 8
    finally:
        db.close()

    assert not tables(store_file) & set(TABLES)  # gone from the task database
    async with SqliteStore(store_file) as store:  # which still opens, its tasks untouched
        assert await store.list_tasks() == []
    again = ForgeDb(forge_file, task_database=store_file)  # a second open moves nothing twice
    try:
        assert [i.number for i in again.items(REPO, "issue")] == [1, 2]
    finally:
        again.close()
    assert pragma(forge_file, "application_id") == APPLICATION_ID
    assert pragma(forge_file, "user_version") == SCHEMA_VERSION


async def test_a_move_interrupted_before_the_drop_is_finished_without_copying(
    tmp_path: Path,
) -> None:
    store_file = await old_install(tmp_path)
    forge_file = tmp_path / "tamma.forge.db"
    ForgeDb(forge_file, task_database=store_file).close()
    old_forge_tables(store_file)  # as if the process died after the copy, before the drop

    db = ForgeDb(forge_file, task_database=store_file)
    try:
        assert len(db.items(REPO, "issue")) == 1 and len(db.comments(REPO, 1)) == 1
    finally:
        db.close()
    assert not tables(store_file) & set(TABLES)


async def test_a_forge_file_that_already_holds_rows_takes_nothing_from_the_task_database(
    tmp_path: Path,
) -> None:
    forge_file = tmp_path / "tamma.forge.db"
    db = ForgeDb(forge_file)
    db.add_issue(REPO, "Mine", "", "bob")
    db.close()
    store_file = await old_install(tmp_path)

    db = ForgeDb(forge_file, task_database=store_file)
    try:
        assert [i.title for i in db.items(REPO, "issue")] == ["Mine"]
    finally:
        db.close()
    assert set(TABLES) <= tables(store_file)  # left where they were: nothing is lost


def test_a_forge_only_file_from_before_its_own_mark_is_adopted(tmp_path: Path) -> None:
    """Memory-queue installs kept the forge in a file of its own, under the task store's mark."""
    path = tmp_path / "forge.db"
    old_forge_tables(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {TASK_STORE_APPLICATION_ID}")
    conn.close()

    db = ForgeDb(path)
    try:
        assert [i.title for i in db.items(REPO, "issue")] == ["Old issue"]
    finally:
        db.close()
    assert pragma(path, "application_id") == APPLICATION_ID
    assert pragma(path, "user_version") == SCHEMA_VERSION


def test_a_forge_file_of_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "forge.db"
    ForgeDb(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = tables(path)

    with pytest.raises(EngineError, match=f"schema {SCHEMA_VERSION + 1}, newer") as caught:
        ForgeDb(path)
    assert caught.value.code == "forge_db_newer" and not caught.value.retryable
    assert tables(path) == before
