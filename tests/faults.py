"""The fault kit: ways to break a store, a database or an agent that any test can reuse.

- ``FailingStore``: any TaskStore whose chosen methods raise StoreError while switched on
  (a store that cannot write: the disk is full, the database is locked, Redis is away).
- ``poison_task``: make one row of a SQLite store undecodable, as another process or an older
  version could (invalid UTF-8, a column that is not JSON).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

from tamma_trio.errors import StoreError
from tamma_trio.store.base import TaskStore


class FailingStore:
    """Forwards to ``inner``; the methods named in ``failing`` raise StoreError instead.

    ``failing`` is a plain set the test edits while the daemon runs, so a fault can start and
    end at chosen moments. ``refused`` counts the refused calls by method name.
    """

    def __init__(self, inner: TaskStore, failing: Iterable[str] = ()) -> None:
        self.inner = inner
        self.failing = set(failing)
        self.refused: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target):
            return target
        return self._guard(name, target)

    def _guard(self, name: str, target: Callable[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            if name in self.failing:
                self.refused[name] = self.refused.get(name, 0) + 1
                raise StoreError(f"injected fault: {name} failed")
            return await target(*args, **kwargs)

        return call if name not in _SYNC_METHODS else target

    def as_store(self) -> TaskStore:
        return cast(TaskStore, self)


_SYNC_METHODS = frozenset({"lock_for_daemon"})


# How a column can be damaged: SQL that writes the bad value, and a phrase of the decode error.
POISONS: dict[str, tuple[str, str]] = {
    "invalid_utf8": ("CAST(x'7b22ff223a317d' AS TEXT)", "invalid UTF-8"),
    "not_json": ("'{\"repository\": '", "not JSON"),
    "not_an_object": ("'[1, 2]'", "valid dictionary"),
}


def poison_task(
    path: Path, task_id: int, column: str = "payload", how: str = "invalid_utf8"
) -> str:
    """Overwrite ``column`` of task ``task_id`` behind the store's back; return what the decode
    error will say. Writes through its own connection, like another process would."""
    sql, phrase = POISONS[how]
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        changed = conn.execute(f"UPDATE tasks SET {column} = {sql} WHERE id = ?", (task_id,))
        assert changed.rowcount == 1, f"no task {task_id} in {path}"
    finally:
        conn.close()
    return phrase


def poison_events(path: Path, task_id: int) -> None:
    """Make every event detail of ``task_id`` invalid UTF-8."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        # task_events is append-only by trigger: a foreign writer would drop it, as we do here.
        conn.execute("DROP TRIGGER task_events_append_only")
        sql = POISONS["invalid_utf8"][0]
        conn.execute(f"UPDATE task_events SET detail = {sql} WHERE task_id = ?", (task_id,))
    finally:
        conn.close()
