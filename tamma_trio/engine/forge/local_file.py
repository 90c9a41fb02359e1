"""Open the local forge's own SQLite file: claim it, migrate it, and move old rows into it once.

The forge keeps its issues, pull requests and checks in a file of its own, with its own
``application_id`` and its own schema version (``PRAGMA user_version``), so its tables migrate
without touching the task store and two SQLite patterns never write one file.

Installs from before kept the ``forge_*`` tables inside the task database. The first open of a
new forge file copies them across in one transaction, records where from, and then drops them
from the task database in a second one: a crash between the two leaves the copy, and the next
open finishes the drop. The drop is never in the copy's transaction, because in WAL mode a
commit across two files is not atomic, and a power loss must never lose both copies.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tamma_trio.engine.forge.local_schema import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
    TASK_STORE_APPLICATION_ID,
)
from tamma_trio.errors import EngineError


def open_forge_file(path: Path, task_database: Path | None = None) -> sqlite3.Connection:
    """An autocommit connection (WAL, busy_timeout) to the forge's file, created or migrated;
    the rows an older install kept in ``task_database`` are moved across on the first open."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5.0)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        _claim_file(conn, path)
        conn.execute("PRAGMA journal_mode = WAL")
        _migrate(conn, path)
        if task_database is not None and task_database.exists() and task_database != path:
            _move_from(conn, task_database)
    except BaseException:
        conn.close()
        raise
    return conn


def _refuse(message: str, code: str) -> EngineError:
    return EngineError(message, code=code, retryable=False)


def _claim_file(conn: sqlite3.Connection, path: Path) -> None:
    """Mark a new file as the forge's; refuse a file of anyone else, the task store included.

    A file that holds nothing but forge tables under the task store's mark is a forge file
    written before the forge had a mark of its own (a memory queue's install): it is ours.
    """
    with _write(conn):
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        others = conn.execute(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'forge_%'"
        ).fetchone()[0]
        if app_id == APPLICATION_ID:
            return
        if app_id in (0, TASK_STORE_APPLICATION_ID) and not others:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            return
        whose = "the task store's" if app_id == TASK_STORE_APPLICATION_ID else "another"
        raise _refuse(
            f"{path} is {whose} SQLite database, not the local forge's; refusing to touch it"
            " (engine.forge.database names the forge's own file)",
            "forge_db_foreign",
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply every migration past the file's version, each in its own transaction."""
    version = _version(conn)
    if version > SCHEMA_VERSION:
        raise _refuse(
            f"{path} holds local forge schema {version}, newer than this tamma-trio's"
            f" ({SCHEMA_VERSION}); refusing to touch it",
            "forge_db_newer",
        )
    while version < SCHEMA_VERSION:
        with _write(conn):
            if _version(conn) != version:  # another process migrated it meanwhile
                version = _version(conn)
                continue
            for statement in MIGRATIONS[version + 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        version += 1


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _move_from(conn: sqlite3.Connection, task_database: Path) -> None:
    conn.execute("ATTACH DATABASE ? AS task", (str(task_database),))
    try:
        legacy = _legacy_tables(conn)
        if not legacy:
            return
        with _write(conn):
            moved_from = _moved_from(conn)
            if moved_from is None and _is_empty(conn):
                for table in legacy:
                    _copy(conn, table)
                conn.execute(
                    "INSERT INTO forge_meta (key, value) VALUES ('moved_from', ?)",
                    (str(task_database),),
                )
                moved_from = str(task_database)
        if moved_from == str(task_database):
            with _write(conn):
                for table in _legacy_tables(conn):
                    conn.execute(f"DROP TABLE task.{table}")
    finally:
        conn.execute("DETACH DATABASE task")


def _copy(conn: sqlite3.Connection, table: str) -> None:
    columns = ", ".join(
        str(row[1]) for row in conn.execute(f"PRAGMA main.table_info({table})").fetchall()
    )
    conn.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM task.{table}")


def _legacy_tables(conn: sqlite3.Connection) -> list[str]:
    """The forge tables still in the task database, when that file is the task store's."""
    if int(conn.execute("PRAGMA task.application_id").fetchone()[0]) != TASK_STORE_APPLICATION_ID:
        return []
    names = {
        str(row[0])
        for row in conn.execute("SELECT name FROM task.sqlite_schema WHERE type = 'table'")
    }
    return [table for table in TABLES if table in names]


def _moved_from(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM forge_meta WHERE key = 'moved_from'").fetchone()
    return None if row is None else str(row[0])


def _is_empty(conn: sqlite3.Connection) -> bool:
    return all(
        conn.execute(f"SELECT NOT EXISTS (SELECT 1 FROM main.{table})").fetchone()[0]
        for table in TABLES
    )


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE: take the write lock first, so a read-then-write never deadlocks with the
    CLI or the daemon opening the same file at the same time."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
