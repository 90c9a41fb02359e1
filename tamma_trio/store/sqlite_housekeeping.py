"""Housekeeping of the SQLite store: pruning finished tasks and returning their pages.

New files are created with ``auto_vacuum = INCREMENTAL`` (sqlite_schema.py), so pages freed by a
prune can be handed back to the file system a few at a time inside the prune's own transaction,
instead of a full VACUUM that rewrites the file and blocks every writer meanwhile. A file made
before that keeps its freed pages for reuse by later rows; it does not shrink.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from tamma_trio.errors import StoreError

# Pages handed back per prune call. Python's sqlite3 steps a statement without result columns
# once, and incremental_vacuum frees one page per step, so each page is one call here; bounding
# them bounds how long one prune holds the writer.
MAX_VACUUM_PAGES = 2000

_OLDEST_FINISHED = """SELECT id FROM tasks INDEXED BY tasks_finished
    WHERE finished_at IS NOT NULL AND finished_at < ? AND status IN ({marks})
    ORDER BY finished_at, id LIMIT ?"""
_DELETE_EVENTS = "DELETE FROM task_events WHERE task_id = ?"
_DELETE_TASK = "DELETE FROM tasks WHERE id = ?"


def prune(
    conn: sqlite3.Connection,
    finished_before: float,
    statuses: Sequence[str],
    limit: int,
    dry_run: bool,
) -> list[int]:
    """Delete (unless ``dry_run``) the oldest finished tasks before the cutoff; their ids."""
    query = _OLDEST_FINISHED.format(marks=", ".join("?" for _ in statuses))
    ids = [int(row[0]) for row in conn.execute(query, (finished_before, *statuses, limit))]
    if dry_run or not ids:
        return ids
    pairs = [(task_id,) for task_id in ids]
    conn.executemany(_DELETE_EVENTS, pairs)
    conn.executemany(_DELETE_TASK, pairs)
    vacuum_some(conn)
    return ids


def vacuum_some(conn: sqlite3.Connection, most: int = MAX_VACUUM_PAGES) -> int:
    """Hand up to ``most`` free pages back to the file system; the number handed back."""
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # 2: INCREMENTAL
        return 0
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    pages = min(free, most)
    for _ in range(pages):
        conn.execute("PRAGMA incremental_vacuum(1)")
    return pages


def backup_file(source: Path, target: Path) -> int:
    """An online, consistent copy of ``source`` at ``target``; its size in bytes.

    SQLite's backup API copies every page in one step, inside one read transaction, so a daemon
    writing meanwhile neither waits nor tears the copy. The copy is checked before it counts.
    """
    try:
        problem = _copy(source, target)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot copy {source} to {target}: {exc}") from None
    if problem != "ok":
        raise StoreError(f"the copy at {target} failed its check ({problem})")
    return target.stat().st_size


def _copy(source: Path, target: Path) -> str:
    reader = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(target)
        try:
            reader.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            return str(copy.execute("PRAGMA quick_check(1)").fetchone()[0])
        finally:
            copy.close()
    finally:
        reader.close()
