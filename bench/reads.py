"""SQLite store reads while writes are in flight: what `tasks list`, `/api/tasks` and the status
snapshot wait for when the writer thread is busy with batches.

    python bench/reads.py [--seconds 10] [--writers 20]

On a fresh file in a temporary directory (synchronous FULL, the default, with the production
runner), seeded with 2,000 queued tasks: ``--writers`` producers add tasks as fast as they can
for ``--seconds`` while three readers loop, each pausing 10 ms between calls:

- read_list_ms_p50/p99/max: list_tasks(limit=50), the first page of `tasks list` and /api/tasks;
- read_stats_ms_p50/p99/max: stats(), the status snapshot's query;
- read_get_ms_p50/p99/max: get(id) of a random task;
- write_tasks_per_s: the producers' rate meanwhile (reads must not slow the writes down).

One ``name: value`` line per figure.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/reads.py`

from bench.common import emit, percentile
from tamma_trio.models import NewTask
from tamma_trio.store.sqlite import SqliteStore

SEED = 2000
READ_PAUSE = 0.01


def new_task(number: int) -> NewTask:
    payload = {"repository": "acme/widgets", "issue": {"number": number, "title": "bench"}}
    return NewTask.build("issue_assigned", payload)


async def measure(seconds: float, writers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="tamma-bench-") as tmp:
        async with SqliteStore(Path(tmp) / "tasks.db") as store:
            await store.add_many([new_task(n) for n in range(1, SEED + 1)])
            numbers = iter(range(SEED + 1, 10**9))
            written = 0
            latencies: dict[str, list[float]] = {"list": [], "stats": [], "get": []}
            reads: dict[str, Callable[[], Awaitable[Any]]] = {
                "list": lambda: store.list_tasks(limit=50),
                "stats": store.stats,
                "get": lambda: store.get(random.randint(1, SEED)),
            }

            async def write() -> None:
                nonlocal written
                while True:
                    await store.add(new_task(next(numbers)))
                    written += 1

            async def read(name: str) -> None:
                while True:
                    started = time.perf_counter()
                    await reads[name]()
                    latencies[name].append((time.perf_counter() - started) * 1000)
                    await trio.sleep(READ_PAUSE)

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(writers):
                    nursery.start_soon(write)
                for name in reads:
                    nursery.start_soon(read, name)
                await trio.sleep(seconds)
                nursery.cancel_scope.cancel()
            elapsed = time.perf_counter() - started
    for name, samples in latencies.items():
        emit(f"read_{name}_ms_p50", percentile(samples, 50))
        emit(f"read_{name}_ms_p99", percentile(samples, 99))
        emit(f"read_{name}_ms_max", max(samples))
        emit(f"read_{name}_count", len(samples))
    emit("write_tasks_per_s", written / elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=20)
    args = parser.parse_args()
    trio.run(measure, args.seconds, args.writers)


if __name__ == "__main__":
    main()
