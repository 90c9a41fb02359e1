"""tamma-trio's rows of bench/scale.py: 1 to 3 `tamma-trio serve` daemons on one Redis.

Every run gets its own key prefix on the shared redis-server. The daemons start first; the tasks
are added once every one of them listens, so none gets a head start. Timings come from the
tasks' own started_at/finished_at: first start to last finish.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trio

from bench.common import bench_env, running
from bench.tamma_side import DAEMON_GRACE, PREFILL_BATCH, Daemon, review_payload, wait_listening
from tamma_trio.models import NewTask, Task, TaskStatus
from tamma_trio.store.redis_store import RedisStore

POLL = 0.1


@dataclass
class RedisRun:
    """One measured run: where it works, its Redis prefix and how its daemons are set up."""

    workdir: Path
    url: str
    prefix: str
    concurrency: int
    wait: float
    log_level: str

    def config_text(self) -> str:
        return (
            f"[service]\nmax_concurrent_tasks = {self.concurrency}\npoll_interval = {POLL}\n"
            f'[service.queue]\ntype = "redis"\n'
            f"[service.queue.redis]\nurl = {json.dumps(self.url)}\n"
            f"prefix = {json.dumps(self.prefix)}\n"
            f'[service.health_check]\nhost = "127.0.0.1"\nport = 0\n'
            f"[service.metrics]\nport = 0\n"
            f'[engine]\nname = "bench.noop_engine:create"\nwait = {self.wait}\n'
            f'[log]\nlevel = "{self.log_level}"\n'
        )

    def daemon(self, index: int) -> Daemon:
        daemon = Daemon(self.workdir / f"daemon{index}", self.log_level)
        daemon.workdir.mkdir(parents=True, exist_ok=True)
        daemon.config_path.write_text(self.config_text())
        return daemon

    def store(self) -> RedisStore:
        return RedisStore(self.url, prefix=self.prefix)


@contextlib.contextmanager
def daemons(run: RedisRun, count: int) -> Iterator[list[tuple[Daemon, subprocess.Popen[bytes]]]]:
    """``count`` daemons of ``run``, each stopped with SIGTERM (then SIGKILL) at the end."""
    with contextlib.ExitStack() as stack:
        started = []
        for index in range(count):
            daemon = run.daemon(index)
            proc = stack.enter_context(
                running(
                    daemon.argv(),
                    env=bench_env(),
                    log_path=daemon.log_path,
                    stop_signal=signal.SIGTERM,
                    grace=DAEMON_GRACE,
                )
            )
            started.append((daemon, proc))
        yield started


async def _fill(run: RedisRun, count: int) -> None:
    store = run.store()
    async with store:
        for start in range(1, count + 1, PREFILL_BATCH):
            stop = min(start + PREFILL_BATCH, count + 1)
            news = [
                NewTask.build("pr_review_requested", review_payload(n)) for n in range(start, stop)
            ]
            await store.add_many(news)


async def _wait_done(run: RedisRun, count: int, deadline: float) -> list[Task]:
    """Poll the queue's counts until ``count`` tasks completed; return them."""
    store = run.store()
    async with store:
        while (await store.stats()).by_status[TaskStatus.COMPLETED] < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{run.prefix}: the daemons did not finish {count} tasks")
            await trio.sleep(0.05)
        return await store.list_tasks(status=TaskStatus.COMPLETED, limit=count)


def _seconds(stamp: dt.datetime | None) -> float:
    if stamp is None:
        raise ValueError("a completed task without a timestamp")
    return stamp.timestamp()


async def rate(run: RedisRun, daemon_count: int, task_count: int, timeout: float) -> float:
    """Tasks per second of ``daemon_count`` daemons over ``task_count`` tasks added at once."""
    deadline = time.monotonic() + timeout
    with daemons(run, daemon_count) as started:
        for daemon, proc in started:
            await wait_listening(daemon, proc, deadline)
        await _fill(run, task_count)
        tasks = await _wait_done(run, task_count, deadline)
    first = min(_seconds(task.started_at) for task in tasks)
    last = max(_seconds(task.finished_at) for task in tasks)
    return len(tasks) / (last - first)
