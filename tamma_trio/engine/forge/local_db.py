"""The local forge's rows: issues, pull requests, comments, labels, checks and reviews in SQLite.

They live in the forge's own SQLite file (local_file.py opens, migrates and claims it), apart
from the task store's, so each migrates on its own and neither writes the other's file. Plain
synchronous code: the async forge runs each call in a worker thread, and the CLI calls it
directly. Issues and pull requests share one number sequence per repository, like GitHub, so
"#7" is never ambiguous.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tamma_trio.engine.forge.base import Comment
from tamma_trio.engine.forge.local_file import open_forge_file
from tamma_trio.engine.forge.local_schema import CheckRow, ItemKind, ItemRow, PullRow


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class ForgeDb:
    """One connection to the forge tables; not thread-safe, so callers serialise access."""

    def __init__(self, path: Path, task_database: Path | None = None) -> None:
        """Open the forge's file; ``task_database`` is where an older install kept the forge's
        rows, moved across on the first open."""
        self._conn = open_forge_file(path, task_database)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock first, so a read-then-write never deadlocks."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # --- items ----------------------------------------------------------------------------
    def _insert_item(
        self,
        conn: sqlite3.Connection,
        repository: str,
        kind: ItemKind,
        title: str,
        body: str,
        author: str,
    ) -> int:
        row = conn.execute(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM forge_items WHERE repository = ?",
            (repository,),
        ).fetchone()
        number = int(row[0])
        conn.execute(
            "INSERT INTO forge_items (repository, number, kind, title, body, author, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (repository, number, kind, title, body, author, _now()),
        )
        return number

    def add_issue(
        self,
        repository: str,
        title: str,
        body: str,
        author: str,
        labels: Sequence[str] = (),
        assignees: Sequence[str] = (),
    ) -> int:
        with self._write() as conn:
            number = self._insert_item(conn, repository, "issue", title, body, author)
            self._add_labels(conn, repository, number, labels)
            conn.executemany(
                "INSERT OR IGNORE INTO forge_assignees VALUES (?, ?, ?)",
                [(repository, number, login) for login in assignees],
            )
        return number

    def item(self, repository: str, number: int) -> ItemRow | None:
        row = self._conn.execute(
            "SELECT repository, number, kind, title, body, state, author, created_at"
            " FROM forge_items WHERE repository = ? AND number = ?",
            (repository, number),
        ).fetchone()
        return None if row is None else self._item_row(row)

    def items(self, repository: str, kind: ItemKind) -> list[ItemRow]:
        rows = self._conn.execute(
            "SELECT repository, number, kind, title, body, state, author, created_at"
            " FROM forge_items WHERE repository = ? AND kind = ? ORDER BY number",
            (repository, kind),
        ).fetchall()
        return [self._item_row(row) for row in rows]

    def _item_row(self, row: tuple[object, ...]) -> ItemRow:
        repository, number = str(row[0]), int(str(row[1]))
        labels = self._column("SELECT label FROM forge_labels", repository, number, "label")
        logins = self._column("SELECT login FROM forge_assignees", repository, number, "login")
        kind: ItemKind = "pull" if row[2] == "pull" else "issue"
        return ItemRow(
            repository,
            number,
            kind,
            str(row[3]),
            str(row[4]),
            str(row[5]),
            str(row[6]),
            str(row[7]),
            labels,
            logins,
        )

    def _column(self, select: str, repository: str, number: int, order: str) -> tuple[str, ...]:
        rows = self._conn.execute(
            f"{select} WHERE repository = ? AND number = ? ORDER BY {order}", (repository, number)
        ).fetchall()
        return tuple(str(row[0]) for row in rows)

    def set_state(self, repository: str, number: int, state: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE forge_items SET state = ? WHERE repository = ? AND number = ?",
                (state, repository, number),
            )

    # --- labels, assignees, comments ------------------------------------------------------
    def _add_labels(
        self, conn: sqlite3.Connection, repository: str, number: int, labels: Sequence[str]
    ) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO forge_labels VALUES (?, ?, ?)",
            [(repository, number, label) for label in labels],
        )

    def add_labels(self, repository: str, number: int, labels: Sequence[str]) -> None:
        with self._write() as conn:
            self._add_labels(conn, repository, number, labels)

    def remove_label(self, repository: str, number: int, label: str) -> None:
        with self._write() as conn:
            conn.execute(
                "DELETE FROM forge_labels WHERE repository = ? AND number = ? AND label = ?",
                (repository, number, label),
            )

    def assign(self, repository: str, number: int, login: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO forge_assignees VALUES (?, ?, ?)",
                (repository, number, login),
            )

    def add_comment(self, repository: str, number: int, author: str, body: str) -> int:
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO forge_comments (repository, number, author, body, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (repository, number, author, body, _now()),
            )
        return int(cursor.lastrowid or 0)

    def comments(self, repository: str, number: int) -> list[Comment]:
        rows = self._conn.execute(
            "SELECT id, author, body, created_at FROM forge_comments"
            " WHERE repository = ? AND number = ? ORDER BY id",
            (repository, number),
        ).fetchall()
        return [Comment(id=r[0], author=r[1], body=r[2], created_at=r[3]) for r in rows]

    # --- pull requests --------------------------------------------------------------------
    def open_pull(
        self,
        repository: str,
        *,
        title: str,
        body: str,
        head_branch: str,
        base: str,
        author: str,
        labels: Sequence[str],
    ) -> tuple[int, bool]:
        """The open pull request for ``head_branch``, else a new one: (number, created)."""
        with self._write() as conn:
            existing = self._open_pull_number(conn, repository, head_branch)
            if existing is not None:
                return existing, False
            number = self._insert_item(conn, repository, "pull", title, body, author)
            conn.execute(
                "INSERT INTO forge_pulls (repository, number, head_branch, base)"
                " VALUES (?, ?, ?, ?)",
                (repository, number, head_branch, base),
            )
            self._add_labels(conn, repository, number, labels)
        return number, True

    def _open_pull_number(
        self, conn: sqlite3.Connection, repository: str, head_branch: str
    ) -> int | None:
        row = conn.execute(
            "SELECT p.number FROM forge_pulls p JOIN forge_items i USING (repository, number)"
            " WHERE p.repository = ? AND p.head_branch = ? AND i.state = 'open'",
            (repository, head_branch),
        ).fetchone()
        return None if row is None else int(row[0])

    def pull(self, repository: str, number: int) -> PullRow | None:
        item = self.item(repository, number)
        row = self._conn.execute(
            "SELECT head_branch, base, head_sha, merge_sha FROM forge_pulls"
            " WHERE repository = ? AND number = ?",
            (repository, number),
        ).fetchone()
        if item is None or row is None:
            return None
        return PullRow(item, str(row[0]), str(row[1]), str(row[2]), row[3])

    def record_head(self, repository: str, number: int, head_sha: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE forge_pulls SET head_sha = ? WHERE repository = ? AND number = ?",
                (head_sha, repository, number),
            )

    def mark_merged(
        self, repository: str, number: int, merge_sha: str, closes: Sequence[int]
    ) -> None:
        """The pull request is merged and the issues it closes are closed, in one transaction."""
        with self._write() as conn:
            conn.execute(
                "UPDATE forge_pulls SET merge_sha = ? WHERE repository = ? AND number = ?",
                (merge_sha, repository, number),
            )
            conn.execute(
                "UPDATE forge_items SET state = 'merged' WHERE repository = ? AND number = ?",
                (repository, number),
            )
            conn.executemany(
                "UPDATE forge_items SET state = 'closed'"
                " WHERE repository = ? AND number = ? AND kind = 'issue'",
                [(repository, issue) for issue in closes],
            )

    # --- checks and reviews ---------------------------------------------------------------
    def check(self, repository: str, sha: str) -> CheckRow | None:
        row = self._conn.execute(
            "SELECT state, exit_code, duration, output_tail FROM forge_checks"
            " WHERE repository = ? AND sha = ?",
            (repository, sha),
        ).fetchone()
        return None if row is None else CheckRow(row[0], row[1], row[2], row[3])

    def save_check(self, repository: str, sha: str, check: CheckRow) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO forge_checks VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    repository,
                    sha,
                    check.state,
                    check.exit_code,
                    check.duration,
                    check.output_tail,
                    _now(),
                ),
            )

    def review(self, repository: str, number: int, reviewer: str, state: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO forge_reviews VALUES (?, ?, ?, ?, ?)",
                (repository, number, reviewer, state, _now()),
            )

    def review_counts(self, repository: str, number: int) -> tuple[int, bool]:
        """(approvals, changes requested?) from each reviewer's latest review."""
        rows = self._conn.execute(
            "SELECT state, COUNT(*) FROM forge_reviews"
            " WHERE repository = ? AND number = ? GROUP BY state",
            (repository, number),
        ).fetchall()
        counts = {str(state): int(count) for state, count in rows}
        return counts.get("approved", 0), counts.get("changes_requested", 0) > 0
