"""Open a tamma-trio SQLite file: refuse what is not ours, create or migrate what is.

Nothing is written until the file has been shown to be ours or empty: the header is read from the
file itself, then a read-only connection inspects ``application_id``, ``user_version`` and the
tables. Only after that does a read-write connection switch to WAL and migrate. The read-only
look matters for a foreign database in WAL mode: closing a read-write connection to it would
checkpoint that application's WAL into its main file.

The schema is versioned by ``PRAGMA user_version`` (one migration per version, applied in one
transaction) and claimed by ``PRAGMA application_id``. Other tables in our file are left alone
(installs from before the local forge had its own file kept its tables here, until its first
open moves them out).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from tamma_trio.errors import StoreError

# "tamm" in ASCII: marks a SQLite file as a tamma-trio store.
APPLICATION_ID = 0x74616D6D

Synchronous = Literal["FULL", "NORMAL"]

_SQLITE_MAGIC = b"SQLite format 3\x00"

_TASK_STATUSES = "('queued', 'in_progress', 'completed', 'failed', 'cancelled')"
_STATUS_LIST = '["queued", "in_progress", "completed", "failed", "cancelled"]'

# owner/name of the subject owner/name#number. A query must spell it exactly so to use the index.
REPOSITORY_EXPRESSION = "substr(subject, 1, instr(subject, '#') - 1)"

# Version N+1 is reached by running MIGRATIONS[N]. Never edit a released migration: add one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"""CREATE TABLE tasks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),
            payload TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN {_TASK_STATUSES}),
            attempts INTEGER NOT NULL DEFAULT 0,
            max_retries INTEGER NOT NULL,
            not_before REAL NOT NULL,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            error TEXT,
            result TEXT,
            subject TEXT NOT NULL,
            key TEXT,
            interruptions INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_token TEXT,
            lease_expires REAL,
            progress TEXT NOT NULL DEFAULT '{{}}'
        ) STRICT""",
        # claim walks this in order; partial, so finished tasks never slow it down
        "CREATE INDEX tasks_queue ON tasks (priority DESC, id) WHERE status = 'queued'",
        "CREATE INDEX tasks_due ON tasks (not_before) WHERE status = 'queued'",
        "CREATE INDEX tasks_active_subject ON tasks (subject) WHERE status = 'in_progress'",
        "CREATE INDEX tasks_by_status ON tasks (status, id)",
        "CREATE UNIQUE INDEX tasks_key ON tasks (key) WHERE key IS NOT NULL",
        "CREATE UNIQUE INDEX tasks_lease ON tasks (lease_token) WHERE lease_token IS NOT NULL",
        """CREATE TABLE task_events (
            id INTEGER PRIMARY KEY,
            task_id INTEGER NOT NULL REFERENCES tasks (id),
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            status TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        ) STRICT""",
        "CREATE INDEX task_events_by_task ON task_events (task_id, id)",
        """CREATE TRIGGER task_events_append_only BEFORE UPDATE ON task_events
           BEGIN SELECT RAISE(ABORT, 'task_events is append-only'); END""",
        # Counts kept by triggers, so stats (polled every second) never scans the table.
        "CREATE TABLE task_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL) STRICT",
        """INSERT INTO task_counts (status, n) VALUES
            ('queued', 0), ('in_progress', 0), ('completed', 0), ('failed', 0), ('cancelled', 0)""",
        """CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks
           BEGIN UPDATE task_counts SET n = n + 1 WHERE status = NEW.status; END""",
        """CREATE TRIGGER task_counts_update AFTER UPDATE OF status ON tasks
           WHEN OLD.status IS NOT NEW.status
           BEGIN
               UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
               UPDATE task_counts SET n = n + 1 WHERE status = NEW.status;
           END""",
        """CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks
           BEGIN UPDATE task_counts SET n = n - 1 WHERE status = OLD.status; END""",
    ),
    (
        # The dashboard's filters and charts: a repository's tasks newest first, and the tasks
        # that ended in the last day, each read from an index instead of the whole table.
        f"CREATE INDEX tasks_repository ON tasks ({REPOSITORY_EXPRESSION}, id)",
        """CREATE INDEX tasks_finished ON tasks (finished_at, status)
           WHERE finished_at IS NOT NULL""",
    ),
    (
        # Counts by status and priority (the dashboard's queue by priority), kept by the same
        # triggers with the same number of writes: counting a backlog's index would read every
        # queued row (the partial index does not hold the status it is filtered on).
        "DROP TRIGGER task_counts_insert",
        "DROP TRIGGER task_counts_update",
        "DROP TRIGGER task_counts_delete",
        "DROP TABLE task_counts",
        """CREATE TABLE task_counts (
            status TEXT NOT NULL, priority INTEGER NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (status, priority)
        ) STRICT, WITHOUT ROWID""",
        f"""INSERT INTO task_counts (status, priority, n)
            SELECT s.value, p.value, 0 FROM json_each('{_STATUS_LIST}') AS s,
                json_each('[0, 1, 2, 3]') AS p""",
        """UPDATE task_counts SET n = c.n
            FROM (SELECT status, priority, count(*) AS n FROM tasks GROUP BY status, priority) AS c
            WHERE c.status = task_counts.status AND c.priority = task_counts.priority""",
        """CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks
           BEGIN UPDATE task_counts SET n = n + 1
                 WHERE status = NEW.status AND priority = NEW.priority; END""",
        """CREATE TRIGGER task_counts_update AFTER UPDATE OF status ON tasks
           WHEN OLD.status IS NOT NEW.status
           BEGIN
               UPDATE task_counts SET n = n - 1
                   WHERE status = OLD.status AND priority = OLD.priority;
               UPDATE task_counts SET n = n + 1
                   WHERE status = NEW.status AND priority = NEW.priority;
           END""",
        """CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks
           BEGIN UPDATE task_counts SET n = n - 1
                 WHERE status = OLD.status AND priority = OLD.priority; END""",
    ),
    (
        # The webhook deliveries log; (forge, delivery_id) is the dedupe key of redeliveries.
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            forge TEXT NOT NULL,
            delivery_id TEXT NOT NULL,
            event TEXT NOT NULL,
            action TEXT NOT NULL,
            repository TEXT NOT NULL,
            sender TEXT NOT NULL,
            outcome TEXT NOT NULL,
            reason TEXT NOT NULL,
            body_sha256 TEXT NOT NULL,
            task_ids TEXT NOT NULL,
            received_at REAL NOT NULL,
            UNIQUE (forge, delivery_id)
        ) STRICT""",
        "CREATE INDEX deliveries_received ON deliveries (received_at)",
        # Commands act on every task of one issue or pull request (cancel, retry, approve).
        "CREATE INDEX tasks_subject ON tasks (subject, id)",
    ),
    (
        # The service event stream (AUTOINCREMENT: an id is never reused, so a client that
        # resumes after one never misses a newer event) and the webhook outbox beside it.
        """CREATE TABLE service_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            task_id INTEGER,
            task_type TEXT,
            repository TEXT,
            subject TEXT,
            reason TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        ) STRICT""",
        """CREATE TABLE notifications (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id INTEGER NOT NULL REFERENCES service_events (id),
            target TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            last_error TEXT,
            delivered_at REAL
        ) STRICT""",
        """CREATE INDEX notifications_due ON notifications (next_attempt_at, id)
           WHERE status = 'pending'""",
        "CREATE INDEX notifications_by_status ON notifications (status, id)",
    ),
    (
        # Retention deletes an event only once no delivery refers to it: one index probe per
        # event instead of a scan of the outbox.
        "CREATE INDEX notifications_event ON notifications (event_id)",
    ),
    (
        # Pull request subjects became owner/name#!N (GitLab numbers merge requests apart from
        # issues): a task stored before must share the subject of the new tasks of its pull
        # request, or commands would miss it and two tasks of one pull request could run at once.
        """UPDATE tasks
           SET subject = substr(subject, 1, instr(subject, '#')) || '!'
                         || substr(subject, instr(subject, '#') + 1)
           WHERE type IN ('pr_review_requested', 'pr_comment')
             AND instr(subject, '#') > 0 AND instr(subject, '#!') = 0""",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def open_database(
    path: Path, synchronous: Synchronous, busy_timeout: float = 5.0, verify: bool = False
) -> sqlite3.Connection:
    """A connection to our store at ``path``, created or migrated; StoreError if it is not ours.

    ``verify`` adds a full ``PRAGMA quick_check`` (it reads the whole file, so it costs time in
    proportion to the store's size) so corruption anywhere in the file is reported at open, not
    at the first damaged page.

    The connection is in autocommit mode (``isolation_level=None``): callers write with explicit
    ``BEGIN IMMEDIATE`` so a transaction never has to upgrade a read lock.
    """
    fresh = _is_fresh(path)
    if not fresh:
        _refuse_foreign(path, verify)
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the task store {path}: {exc}") from None
    try:
        if fresh:  # only possible before the first table: pruning can then shrink the file
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        _enable_wal(conn, path)
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open the task store {path}: {exc}") from None
    except BaseException:
        conn.close()
        raise
    return conn


def open_reader(path: Path, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """A read-only connection to a store the writer has already opened (so checked, migrated
    and in WAL mode): it reads the last committed snapshot while the writer writes."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the task store {path} for reading: {exc}") from None
    return conn


def _is_fresh(path: Path) -> bool:
    """True for a path with no file yet or an empty file: ours to initialise."""
    try:
        return path.stat().st_size == 0
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise StoreError(f"cannot open the task store {path}: {exc.strerror}") from None


def _refuse_foreign(path: Path, verify: bool) -> None:
    """Raise StoreError unless ``path`` is a sound SQLite file that is ours or has no tables."""
    _check_magic(path)
    try:
        probe = sqlite3.connect(_probe_uri(path), uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the task store {path}: {exc}") from None
    try:
        app_id, version, tables = _inspect(probe)
        problem = _first_problem(probe) if verify else None
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is corrupt or not a SQLite database ({exc})") from None
    finally:
        probe.close()
    if problem is not None:
        raise StoreError(f"{path} is corrupt ({problem})")
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {version}, newer than this tamma-trio knows "
                f"({SCHEMA_VERSION}); upgrade tamma-trio"
            )
    elif app_id != 0 or tables:
        raise StoreError(
            f"{path} is a SQLite database of another application "
            f"(application_id {app_id:#x}, {tables} tables); refusing to touch it"
        )


def _probe_uri(path: Path) -> str:
    """A read-only URI; ``immutable`` when no side file exists, so SQLite creates none either.

    Without a -wal or -journal file everything committed is in the main file, so reading it
    without locks sees all of it, and a foreign WAL-mode file does not get a -wal and -shm
    from us. With a side file present someone may be writing: read it the ordinary way.
    """
    uri = path.resolve().as_uri() + "?mode=ro"
    side_files = (Path(f"{path}-wal"), Path(f"{path}-journal"))
    return uri if any(side.exists() for side in side_files) else uri + "&immutable=1"


def _check_magic(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read the task store {path}: {exc.strerror}") from None
    if header != _SQLITE_MAGIC:
        raise StoreError(f"{path} is not a SQLite database (unknown file header)")


def _first_problem(conn: sqlite3.Connection) -> str | None:
    problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    return None if problem == "ok" else str(problem)


def _inspect(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """(application_id, user_version, number of tables); a full read of the schema catalogue."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchone()[0]
    return int(app_id), int(version), int(tables)


def _enable_wal(conn: sqlite3.Connection, path: Path) -> None:
    """WAL lets the CLI read and write while the daemon holds its connection open."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"cannot use the task store {path}: WAL mode refused (got {mode})")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to SCHEMA_VERSION in one transaction; a concurrent opener waits.

    An up-to-date file is only read, so opening it (every CLI call) takes no write lock.
    """
    if _inspect(conn)[:2] == (APPLICATION_ID, SCHEMA_VERSION):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        app_id, version, tables = _inspect(conn)
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            raise StoreError(f"{path} was claimed by another application while opening")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path} was upgraded to schema {version} while opening")
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
