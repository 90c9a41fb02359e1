"""The local forge's schema and row types, and how its connection opens the shared file.

The forge tables live in the task store's SQLite file. The store refuses a file that another
application claimed, so the forge marks a brand-new file with the store's application_id before
creating its tables, and refuses a file that belongs to someone else.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tamma_trio.errors import EngineError
from tamma_trio.store.sqlite_schema import APPLICATION_ID

ItemKind = Literal["issue", "pull"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS forge_items (
    repository TEXT NOT NULL,
    number INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('issue', 'pull')),
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'merged')),
    author TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (repository, number)
);
CREATE TABLE IF NOT EXISTS forge_pulls (
    repository TEXT NOT NULL,
    number INTEGER NOT NULL,
    head_branch TEXT NOT NULL,
    base TEXT NOT NULL,
    head_sha TEXT NOT NULL DEFAULT '',
    merge_sha TEXT,
    PRIMARY KEY (repository, number)
);
CREATE TABLE IF NOT EXISTS forge_labels (
    repository TEXT NOT NULL, number INTEGER NOT NULL, label TEXT NOT NULL,
    PRIMARY KEY (repository, number, label)
);
CREATE TABLE IF NOT EXISTS forge_assignees (
    repository TEXT NOT NULL, number INTEGER NOT NULL, login TEXT NOT NULL,
    PRIMARY KEY (repository, number, login)
);
CREATE TABLE IF NOT EXISTS forge_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repository TEXT NOT NULL, number INTEGER NOT NULL,
    author TEXT NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS forge_comments_item ON forge_comments (repository, number, id);
CREATE TABLE IF NOT EXISTS forge_checks (
    repository TEXT NOT NULL, sha TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('success', 'failure')),
    exit_code INTEGER NOT NULL, duration REAL NOT NULL, output_tail TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (repository, sha)
);
CREATE TABLE IF NOT EXISTS forge_reviews (
    repository TEXT NOT NULL, number INTEGER NOT NULL, reviewer TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('approved', 'changes_requested')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (repository, number, reviewer)
);
"""


@dataclass(frozen=True)
class ItemRow:
    repository: str
    number: int
    kind: ItemKind
    title: str
    body: str
    state: str
    author: str
    created_at: str
    labels: tuple[str, ...]
    assignees: tuple[str, ...]


@dataclass(frozen=True)
class PullRow:
    item: ItemRow
    head_branch: str
    base: str
    head_sha: str
    merge_sha: str | None


@dataclass(frozen=True)
class CheckRow:
    state: Literal["success", "failure"]
    exit_code: int
    duration: float
    output_tail: str


def connect(path: Path) -> sqlite3.Connection:
    """An autocommit connection (WAL, busy_timeout) with the forge tables created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5.0)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        _claim_file(conn, path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)  # IF NOT EXISTS: safe on every open
    except BaseException:
        conn.close()
        raise
    return conn


def _claim_file(conn: sqlite3.Connection, path: Path) -> None:
    """Mark a new file as tamma-trio's (the store checks the mark); refuse a foreign file."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        others = conn.execute(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'forge_%'"
        ).fetchone()[0]
        if app_id == 0 and not others:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        elif app_id != APPLICATION_ID:
            raise EngineError(
                f"{path} is a SQLite database of another application; refusing to touch it",
                code="forge_db_foreign",
                retryable=False,
            )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
