"""Beyond one host: tamma-trio daemons sharing one queue, beside SQLite and the Redis peers.

    python bench/scale.py                 # every row, a few minutes on 2 cores
    python bench/scale.py --quick         # small counts, to check the bench itself
    python bench/scale.py --only capacity,rq

Prints ``name: value`` lines (tasks/s, ratios). One redis-server (appendonly yes, appendfsync
everysec) is started on a free port in a temporary directory and serves every Redis row; each
row uses its own keys. Rows (``--only``, default all), one function each in ROWS:
- capacity: tasks that wait 200 ms in the engine (as an agent would), 3 slots a daemon, with
  1, 2 and 3 daemons on one Redis; capacity_ratio_3_vs_1 is the scaling (3.0 is perfect).
- redis: the drain of no-op tasks with 1, 2 and 3 daemons on one Redis (--concurrency slots each).
- sqlite: the same drain by one daemon on SQLite (synchronous FULL), the single-host figure.
- rq: RQ burst workers (SimpleWorker), 1 and 3 processes.
- huey: Huey's RedisHuey consumer with thread workers, 1 and --concurrency threads.
- sqs: the drain of --sqs-tasks no-op tasks with 1 and 2 daemons on SQS and DynamoDB in moto's
  server mode on loopback (bench/scale_sqs.py); labelled so: a stand-in's speed is not AWS's.
Drains are timed from the first task's start to the last one's finish, from each system's own
records; tamma-trio's daemons start before the tasks are added, the peers' queue is filled first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/scale.py`

from bench import redis_peers, scale_sqs, tamma_side
from bench.common import emit
from bench.redis_tamma import RedisRun, rate
from tests.redis_server import RedisServer

ROW_TIMEOUT = 300.0
CAPACITY_SLOTS = 3
CAPACITY_WAIT = 0.2


@dataclass
class Bench:
    """What every row gets: the arguments, a scratch directory and the shared redis-server."""

    args: argparse.Namespace
    workdir: Path
    redis: RedisServer

    def run(self, prefix: str, concurrency: int, wait: float) -> RedisRun:
        where = self.workdir / prefix
        return RedisRun(where, self.redis.url, prefix, concurrency, wait, self.args.log_level)


async def row_capacity(bench: Bench) -> None:
    rates = {}
    for daemons in (1, 2, 3):
        run = bench.run(f"capacity{daemons}", CAPACITY_SLOTS, CAPACITY_WAIT)
        rates[daemons] = await rate(run, daemons, bench.args.capacity_tasks, ROW_TIMEOUT)
        emit(f"capacity_redis_{daemons}_daemons", rates[daemons])
    emit("capacity_ratio_3_vs_1", rates[3] / rates[1])


async def row_redis(bench: Bench) -> None:
    for daemons in (1, 2, 3):
        run = bench.run(f"drain{daemons}", bench.args.concurrency, 0.0)
        found = await rate(run, daemons, bench.args.drain_tasks, ROW_TIMEOUT)
        emit(f"drain_redis_{daemons}_daemons", found)


async def row_sqlite(bench: Bench) -> None:
    args = bench.args
    found = await tamma_side.drain(
        bench.workdir / "sqlite", args.drain_tasks, args.concurrency, args.log_level, ROW_TIMEOUT
    )
    emit("drain_sqlite_1_daemon", found)


async def row_rq(bench: Bench) -> None:
    for workers in (1, 3):
        found = await trio.to_thread.run_sync(
            redis_peers.rq_drain,
            bench.workdir,
            bench.redis.url,
            bench.args.drain_tasks,
            workers,
            ROW_TIMEOUT,
        )
        emit(f"drain_rq_{workers}_workers", found)


async def row_huey(bench: Bench) -> None:
    for workers in sorted({1, bench.args.concurrency}):
        found = await trio.to_thread.run_sync(
            redis_peers.huey_drain,
            bench.workdir,
            bench.redis.url,
            bench.args.drain_tasks,
            workers,
            ROW_TIMEOUT,
        )
        emit(f"drain_redis_huey_{workers}_threads", found)


async def row_sqs(bench: Bench) -> None:
    for daemons in (1, 2):
        where = bench.workdir / f"sqs{daemons}"
        found = await trio.to_thread.run_sync(
            scale_sqs.drain_rate, bench.args.sqs_tasks, daemons, where
        )
        emit(f"drain_sqs_{daemons}_daemons ({scale_sqs.LABEL})", found)


# One entry per row, in the order they run; another backend joins with one function here.
ROWS: dict[str, Callable[[Bench], Awaitable[None]]] = {
    "capacity": row_capacity,
    "redis": row_redis,
    "sqlite": row_sqlite,
    "rq": row_rq,
    "huey": row_huey,
    "sqs": row_sqs,
}


def parse_rows(text: str) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ROWS))
    if unknown or not chosen:
        given = ", ".join(unknown) or "(none given)"
        raise argparse.ArgumentTypeError(f"unknown row(s) {given}; choose from {', '.join(ROWS)}")
    return [name for name in ROWS if name in chosen]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drain-tasks", type=int, default=5_000)
    parser.add_argument("--capacity-tasks", type=int, default=270)
    parser.add_argument("--sqs-tasks", type=int, default=1_000, help="moto answers slowly")
    parser.add_argument("--concurrency", type=int, default=20, help="slots a drain daemon")
    parser.add_argument("--log-level", default="warning", help="the daemons' [log] level")
    parser.add_argument("--only", type=parse_rows, default=list(ROWS), help="comma list of rows")
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.drain_tasks, args.capacity_tasks, args.sqs_tasks = 300, 36, 100
    return args


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tamma-scale-") as scratch:
        workdir = Path(scratch)
        redis = RedisServer(workdir / "redis").start()
        try:
            bench = Bench(args, workdir, redis)
            for name in args.only:
                await ROWS[name](bench)
        finally:
            redis.stop()


if __name__ == "__main__":
    trio.run(main, parse_args())
