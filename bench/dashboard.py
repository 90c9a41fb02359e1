"""Dashboard page render times with 100,000 tasks in a SQLite store.

    python bench/dashboard.py [--tasks 100000] [--requests 200]

Seeds a fresh SQLite file (production runner: writer thread, WAL) with tasks spread over the last
30 days in every status: most completed, some failed, escalated for approval, cancelled, queued,
and a few in progress with step events, across 20 repositories. Then asks the real Quart app
(in process, through its test client: routing, auth, store reads, Jinja, headers) for each page
``--requests`` times and prints p50 and p99 wall time and the mean CPU time in milliseconds,
one ``name: value`` line each. The budget is 50 ms a page.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/dashboard.py`

from bench.common import emit, percentile
from tamma_trio.config import ServiceConfig
from tamma_trio.metrics import Metrics
from tamma_trio.models import NewTask
from tamma_trio.status import ServiceState, ServiceStatus
from tamma_trio.store.sqlite import SqliteStore
from tamma_trio.web import WebDeps, create_app

DAY = 86_400
REPOSITORIES = [f"acme/repo-{n:02d}" for n in range(20)]
SEED_BATCH = 1000
RUNNING = 8


def new_task(number: int) -> NewTask:
    repository = REPOSITORIES[number % len(REPOSITORIES)]
    title = f"Fix bug {number} in the parser" if number % 7 else f"Crash on <input> #{number}"
    payload = {"repository": repository, "issue": {"number": number + 1, "title": title}}
    return NewTask.build("issue_assigned", payload, actor="bench")


async def seed(store: SqliteStore, path: Path, count: int, now: float) -> None:
    """Add through the store (the real insert path), then age and end the tasks in plain SQL:
    driving 100,000 tasks through claim and complete would take minutes and measure nothing
    the page reads differently."""
    for start in range(0, count, SEED_BATCH):
        await store.add_many([new_task(n) for n in range(start, min(start + SEED_BATCH, count))])
    with sqlite3.connect(path) as conn:
        _end_tasks(conn, count, now)


def _end_tasks(conn: sqlite3.Connection, count: int, now: float) -> None:
    rng = random.Random(13)
    rows: list[tuple[Any, ...]] = []
    for task_id in range(1, count + 1):
        created = now - 30 * DAY * (1 - task_id / count)
        finished = min(now, created + rng.uniform(5, 900))
        roll = rng.random()
        if task_id > count - 50:
            rows.append(("queued", None, None, None, created, task_id))
        elif roll < 0.90:
            result = '{"action":"auto_approved"}'
            rows.append(("completed", finished, None, result, created, task_id))
        elif roll < 0.94:
            result = '{"action":"escalated_for_approval","stage":"plan","reasons":["risk high"]}'
            rows.append(("completed", finished, None, result, created, task_id))
        elif roll < 0.98:
            rows.append(("failed", finished, "tests failed (exit code 1)", None, created, task_id))
        else:
            rows.append(("cancelled", finished, None, None, created, task_id))
    conn.executemany(
        "UPDATE tasks SET status = ?, finished_at = ?, error = ?, result = ?, created_at = ?,"
        " started_at = created_at, attempts = 1 WHERE id = ?",
        rows,
    )
    running = range(count - 50 - RUNNING, count - 50)
    conn.executemany(
        "UPDATE tasks SET status = 'in_progress', finished_at = NULL, result = NULL,"
        " started_at = ? WHERE id = ?",
        [(now - 120, task_id) for task_id in running],
    )
    conn.executemany(
        "INSERT INTO task_events (task_id, at, kind, actor, status, detail)"
        " VALUES (?, ?, 'step', 'worker', NULL, ?)",
        [(task_id, now - 60, '{"step":"implement_code","attempt":1}') for task_id in running],
    )


def pages(count: int) -> dict[str, str]:
    return {
        "overview": "/ui/",
        "overview_live": "/ui/live",
        "tasks": "/ui/tasks",
        "tasks_failed": "/ui/tasks?status=failed",
        "tasks_repository": "/ui/tasks?repository=acme/repo-07",
        "tasks_deep_page": f"/ui/tasks?before={count // 3}",
        "tasks_text": "/ui/tasks?text=crash",
        "task": f"/ui/tasks/{count // 2}",
    }


async def measure(path: Path, count: int, requests: int) -> None:
    now = time.time()
    store = SqliteStore(path, synchronous="NORMAL")
    async with store:
        started = time.perf_counter()
        await seed(store, path, count, now)
        emit("seed_seconds", time.perf_counter() - started)
        status = ServiceStatus(started_at=trio.current_time(), state=ServiceState.RUNNING)
        config = ServiceConfig()
        deps = WebDeps(store, status, Metrics(status), lambda: None, config, trio.current_time)
        client = create_app(deps).test_client()
        for name, url in pages(count).items():
            await _time_page(client, name, url, requests)


async def _time_page(client: Any, name: str, url: str, requests: int) -> None:
    samples = []
    cpu_start = 0.0
    for index in range(requests + 5):
        if index == 5:
            cpu_start = time.process_time()
        begin = time.perf_counter()
        response = await client.get(url, scope_base={"client": ("127.0.0.1", 40000)})
        await response.get_data()
        samples.append((time.perf_counter() - begin) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    cpu_ms = (time.process_time() - cpu_start) * 1000 / requests
    samples = samples[5:]  # the first requests compile templates and warm the page cache
    emit(f"{name}_p50_ms", percentile(samples, 50))
    emit(f"{name}_p99_ms", percentile(samples, 99))
    # CPU of both threads (trio and the store's writer): steadier than wall time on a busy host.
    emit(f"{name}_cpu_ms", cpu_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        emit("tasks", args.tasks)
        trio.run(measure, Path(directory) / "dashboard.db", args.tasks, args.requests)


if __name__ == "__main__":
    main()
