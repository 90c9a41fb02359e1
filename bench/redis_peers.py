"""The peers' rows of bench/scale.py: RQ and Huey's RedisHuey on the same redis-server.

Both drain ``count`` no-op tasks queued before their workers start, like tamma-trio's drain:
- RQ: ``rq worker --burst`` processes with SimpleWorker (the job runs in the worker process;
  RQ's default Worker forks once per job, far slower on no-op jobs), timed from the jobs' own
  started_at/ended_at.
- RedisHuey: one consumer with thread workers (Huey's usual setup), timed from its EXECUTING
  and COMPLETE signals (bench/huey_recorder.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import redis
from rq import Queue
from rq.job import Job

from bench.common import (
    BIN_DIR,
    HUEY_DB_ENV,
    HUEY_EXPECT_ENV,
    HUEY_REPORT_ENV,
    bench_env,
    log_tail,
    running,
)

GRACE = 10.0
ENQUEUE_BATCH = 1_000


def noop() -> None:
    """RQ's job: imported by the workers as ``bench.redis_peers.noop``."""
    return None


def _rq_fill(queue: Queue, count: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, ENQUEUE_BATCH):
        size = min(ENQUEUE_BATCH, count - start)
        datas = [Queue.prepare_data("bench.redis_peers.noop") for _ in range(size)]
        ids += [job.id for job in queue.enqueue_many(datas)]
    return ids


def rq_drain(workdir: Path, url: str, count: int, workers: int, timeout: float) -> float:
    """Tasks per second of ``workers`` burst workers over ``count`` queued no-op jobs."""
    connection = redis.Redis.from_url(url)
    name = f"bench-rq-w{workers}"
    ids = _rq_fill(Queue(name, connection=connection), count)
    argv = [str(BIN_DIR / "rq"), "worker", "--burst", "-q", "-u", url, name]
    argv += ["-w", "rq.worker.SimpleWorker"]
    deadline = time.monotonic() + timeout
    with contextlib.ExitStack() as stack:
        started = []
        for index in range(workers):
            log = workdir / f"{name}-{index}.log"
            worker = running(
                argv, env=bench_env(), log_path=log, stop_signal=signal.SIGTERM, grace=GRACE
            )
            started.append((stack.enter_context(worker), log))
        for proc, log in started:
            if proc.wait(timeout=max(deadline - time.monotonic(), 0.1)) != 0:
                raise RuntimeError(f"rq worker failed:\n{log_tail(log)}")
    jobs = Job.fetch_many(ids, connection=connection)
    connection.close()
    first = min(job.started_at for job in jobs if job and job.started_at)
    last = max(job.ended_at for job in jobs if job and job.ended_at)
    return count / (last - first).total_seconds()


def _huey_messages(url: str, name: str, count: int) -> None:
    """Queue ``count`` no-op tasks for queue ``name``; the consumer module's registry encodes
    them, since a task is known by its module path."""
    os.environ.setdefault(HUEY_DB_ENV, url)
    from huey import RedisHuey

    from bench import huey_redis_app

    producer = RedisHuey(name, url=url)
    message = huey_redis_app.huey.serialize_task(huey_redis_app.noop.s())
    with producer.storage.conn.pipeline(transaction=False) as pipe:
        for _ in range(count):
            pipe.lpush(producer.storage.queue_key, message)
        pipe.execute()


def huey_drain(workdir: Path, url: str, count: int, workers: int, timeout: float) -> float:
    """Tasks per second of one RedisHuey consumer with ``workers`` threads."""
    name = f"bench-huey-w{workers}"
    _huey_messages(url, name, count)
    report = workdir / f"{name}.report.json"
    env = bench_env(
        **{HUEY_DB_ENV: url, HUEY_REPORT_ENV: str(report), HUEY_EXPECT_ENV: str(count)},
        BENCH_HUEY_NAME=name,
    )
    argv = [str(BIN_DIR / "huey_consumer"), "bench.huey_redis_app.huey", "-k", "thread"]
    argv += ["-w", str(workers)]
    log = workdir / f"{name}.log"
    deadline = time.monotonic() + timeout
    with running(argv, env=env, log_path=log, stop_signal=signal.SIGINT, grace=GRACE):
        while not report.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"RedisHuey did not finish in time:\n{log_tail(log)}")
            time.sleep(0.05)
    found = json.loads(report.read_text())
    return float(count / (found["last_complete"] - found["first_executing"]))
