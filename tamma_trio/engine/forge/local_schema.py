"""The local forge's tables, their versions, and the row types its database hands out.

The forge keeps its own SQLite file (see local_file.py): marked with the forge's own
``application_id``, versioned by ``PRAGMA user_version``, one migration per version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

ItemKind = Literal["issue", "pull"]

# "tamf" in ASCII: marks a SQLite file as a tamma-trio local forge.
APPLICATION_ID = 0x74616D66
# "tamm": the task store's mark. Installs from before the forge had a file of its own kept the
# forge tables inside the task database, and a forge-only file (memory queue) carried this mark.
TASK_STORE_APPLICATION_ID = 0x74616D6D

_VERSION_1 = """
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
CREATE TABLE IF NOT EXISTS forge_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
"""

# Version -> the statements that bring the file from the version before to it. Version 1 is
# written with IF NOT EXISTS: files from before versions existed already hold its tables.
MIGRATIONS: Mapping[int, Sequence[str]] = {
    1: tuple(s.strip() for s in _VERSION_1.split(";") if s.strip()),
}
SCHEMA_VERSION = max(MIGRATIONS)

# The tables that hold the forge's data, in an order that copies them with their references.
TABLES = (
    "forge_items",
    "forge_pulls",
    "forge_labels",
    "forge_assignees",
    "forge_comments",
    "forge_checks",
    "forge_reviews",
)


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
