"""SQLite task store throughput through trio, as the daemon drives it.

    python bench/store.py [--seconds 2.5]

For synchronous FULL and NORMAL, each on a fresh file in a temporary directory, with the
production runner (writer thread, group commit):

- enqueue_<sync>_<n>_tasks_per_s: n concurrent producers calling add() (webhooks, the API);
- claim_complete_<sync>_<n>_tasks_per_s: n workers looping claim(1) then complete();
- ..._ops_per_commit: operations per transaction, the group-commit factor;
- ..._cpu_us_per_task: process CPU time per task (both threads), which, unlike the rates,
  hardly moves when other processes load the machine.

One ``name: value`` line per figure. Every run checks that no task was handed out twice.

Reading the figures: n workers keep at most n operations waiting, so one transaction holds at
most n of them, and under FULL one claim+complete costs at least 2/n of an fsync. With 20
workers that is 10 tasks per fsync: where other processes are also syncing the disk, FULL
follows the fsync latency, while NORMAL and cpu_us_per_task show the store's own cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from tamma_trio.models import NewTask, TaskStatus
from tamma_trio.store.sqlite import SqliteStore
from tamma_trio.store.sqlite_schema import Synchronous

CONCURRENCY = (1, 20)
SEED_BATCH = 500


def new_task(number: int) -> NewTask:
    """A realistic task; distinct issue numbers, so subject exclusivity never idles a worker."""
    payload = {"repository": "acme/widgets", "issue": {"number": number, "title": "Fix the bug"}}
    return NewTask.build("issue_assigned", payload, actor="bench")


class Run:
    """One measurement on a fresh store: a fixed wall-time window, n concurrent loops."""

    def __init__(self, directory: Path, synchronous: Synchronous, name: str) -> None:
        self.store = SqliteStore(directory / f"{name}.db", synchronous=synchronous)
        self.done = 0
        self.claimed: set[int] = set()
        self.commits_before = (0, 0)
        self.cpu_us_per_task = 0.0

    async def loop_until(self, deadline: float, step: Callable[[], Awaitable[int]]) -> None:
        while trio.current_time() < deadline:
            finished = await step()  # not `done += await ...`: that reads done before awaiting
            self.done += finished

    async def measure(
        self, concurrency: int, seconds: float, step: Callable[[], Awaitable[int]]
    ) -> float:
        self.commits_before = self.store.commit_counts
        cpu_before = time.process_time()
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(self.loop_until, start + seconds, step)
        self.cpu_us_per_task = (time.process_time() - cpu_before) / max(self.done, 1) * 1e6
        return self.done / (trio.current_time() - start)

    def ops_per_commit(self) -> float:
        """Operations per transaction during the window: the group-commit factor."""
        transactions, operations = self.store.commit_counts
        before_transactions, before_operations = self.commits_before
        return (operations - before_operations) / max(transactions - before_transactions, 1)


class Figures:
    """What one run measured, printed as ``name: value`` lines."""

    def __init__(self, rate: float, run: Run) -> None:
        self.rate = rate
        self.ops_per_commit = run.ops_per_commit()
        self.cpu_us_per_task = run.cpu_us_per_task

    def report(self, name: str) -> None:
        print(f"{name}_tasks_per_s: {self.rate:.0f}", flush=True)
        print(f"{name}_ops_per_commit: {self.ops_per_commit:.1f}", flush=True)
        print(f"{name}_cpu_us_per_task: {self.cpu_us_per_task:.0f}", flush=True)


async def bench_enqueue(
    directory: Path, synchronous: Synchronous, concurrency: int, seconds: float
) -> Figures:
    run = Run(directory, synchronous, f"enqueue-{synchronous}-{concurrency}")
    async with run.store:
        return await _enqueue(run, concurrency, seconds)


async def _enqueue(run: Run, concurrency: int, seconds: float) -> Figures:
    numbers = iter(range(1, 10**9))

    async def add_one() -> int:
        await run.store.add(new_task(next(numbers)))
        return 1

    figures = Figures(await run.measure(concurrency, seconds, add_one), run)
    stats = await run.store.stats()
    assert stats.queue_depth == run.done, (stats.queue_depth, run.done)
    return figures


async def bench_claim_complete(
    directory: Path, synchronous: Synchronous, concurrency: int, seconds: float, seed: int
) -> Figures:
    run = Run(directory, synchronous, f"claim-{synchronous}-{concurrency}")
    async with run.store:
        return await _claim_complete(run, concurrency, seconds, seed)


async def _claim_complete(run: Run, concurrency: int, seconds: float, seed: int) -> Figures:
    for first in range(1, seed + 1, SEED_BATCH):
        await run.store.add_many([new_task(n) for n in range(first, first + SEED_BATCH)])

    async def claim_and_complete() -> int:
        [task] = await run.store.claim(1)
        assert task.id not in run.claimed, f"task {task.id} handed out twice"
        run.claimed.add(task.id)
        await run.store.complete(task.id, task.lease_token or "", {"action": "noop"})
        return 1

    figures = Figures(await run.measure(concurrency, seconds, claim_and_complete), run)
    stats = await run.store.stats()
    assert stats.by_status[TaskStatus.COMPLETED] == run.done, (stats.by_status, run.done)
    return figures


async def main(seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="tamma-bench-") as tmp:
        directory = Path(tmp)
        for synchronous in ("FULL", "NORMAL"):
            label = synchronous.lower()
            for n in CONCURRENCY:
                figures = await bench_enqueue(directory, synchronous, n, seconds)
                figures.report(f"enqueue_{label}_{n}")
            for n in CONCURRENCY:
                seed = int(seconds * 12_000)
                figures = await bench_claim_complete(directory, synchronous, n, seconds, seed)
                figures.report(f"claim_complete_{label}_{n}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.5, help="window per figure")
    started = time.perf_counter()
    trio.run(main, parser.parse_args().seconds)
    print(f"bench_wall_seconds: {time.perf_counter() - started:.1f}")
