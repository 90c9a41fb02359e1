"""Huey's half of the comparison: SqliteHuey with its defaults, thread workers, a no-op task.

Huey's defaults are WAL with SQLite's default synchronous (FULL), so it pays one fsync per
dequeue, like tamma-trio at synchronous FULL pays per commit.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    BIN_DIR,
    HUEY_DB_ENV,
    HUEY_EXPECT_ENV,
    HUEY_REPORT_ENV,
    bench_env,
    log_tail,
    running,
)

CONSUMER_GRACE = 10.0


@dataclass
class HueyRun:
    """Where one consumer run keeps its database, report and log."""

    workdir: Path
    name: str
    workers: int

    @property
    def db(self) -> Path:
        # One file for every run: the producer side imports huey_app (and its db) only once.
        return self.workdir / "huey.db"

    @property
    def report(self) -> Path:
        return self.workdir / f"{self.name}.report.json"

    def env(self, expect: int) -> dict[str, str]:
        return bench_env(
            **{
                HUEY_DB_ENV: str(self.db),
                HUEY_REPORT_ENV: str(self.report),
                HUEY_EXPECT_ENV: str(expect),
            }
        )

    def argv(self) -> list[str]:
        consumer = BIN_DIR / "huey_consumer"
        return [str(consumer), "bench.huey_app.huey", "-k", "thread", "-w", str(self.workers)]


def _huey_for(db: Path) -> Any:
    """The producer side: the module the consumer imports, on the same database file."""
    os.environ.setdefault(HUEY_DB_ENV, str(db))
    from bench import huey_app

    if Path(huey_app.huey.storage.filename) != db:
        raise RuntimeError("bench.huey_app was imported with another database")
    return huey_app


def prefill(run: HueyRun, count: int) -> None:
    """Insert ``count`` serialized no-op tasks in one transaction (enqueue() fsyncs each)."""
    app = _huey_for(run.db)
    rows = [(app.huey.name, app.huey.serialize_task(app.noop.s()), 0) for _ in range(count)]
    conn = sqlite3.connect(run.db, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO task (queue, data, priority) VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _wait_for_report(run: HueyRun, deadline: float, log: Path) -> dict[str, Any]:
    while time.monotonic() < deadline:
        if run.report.exists():
            return dict(json.loads(run.report.read_text()))
        time.sleep(0.05)
    raise TimeoutError(f"huey did not finish in time; log tail:\n{log_tail(log)}")


def drain(workdir: Path, count: int, workers: int, timeout: float) -> float:
    """Tasks per second from Huey's first EXECUTING to its last COMPLETE signal."""
    run = HueyRun(workdir, f"huey-drain-w{workers}", workers)
    prefill(run, count)
    log = workdir / f"{run.name}.log"
    with running(
        run.argv(),
        env=run.env(count),
        log_path=log,
        stop_signal=signal.SIGINT,
        grace=CONSUMER_GRACE,
    ):
        report = _wait_for_report(run, time.monotonic() + timeout, log)
    return float(count / (report["last_complete"] - report["first_executing"]))


def pickup(workdir: Path, samples: int, gaps: tuple[float, float], timeout: float) -> list[float]:
    """Seconds from enqueue to EXECUTING for single tasks sent to an idle consumer."""
    run = HueyRun(workdir, "huey-pickup", 1)
    app = _huey_for(run.db)
    log = workdir / f"{run.name}.log"
    enqueued: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    with running(
        run.argv(),
        env=run.env(samples),
        log_path=log,
        stop_signal=signal.SIGINT,
        grace=CONSUMER_GRACE,
    ):
        for _ in range(samples):
            time.sleep(random.uniform(*gaps))
            sent = time.time()
            enqueued[app.noop().id] = sent
            while app.huey.pending_count() and time.monotonic() < deadline:
                time.sleep(0.002)
        report = _wait_for_report(run, deadline, log)
    return [report["executing"][task_id] - sent for task_id, sent in enqueued.items()]
