"""The SQS backend at scale: enqueue N tasks, then drain them with D daemons on one queue.

    python -m bench.scale_sqs [--tasks 1000] [--daemons 2]

Runs against moto's server mode on loopback, started here: a local stand-in's speed is not
AWS's (every figure is labelled so), but the run shows the whole path working at size, with
real `tamma-trio serve` processes and the no-op engine. Prints ``name: value`` lines.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory

import trio

from bench.common import bench_env, emit, log_tail, running
from tamma_trio.config import SqsQueueConfig
from tamma_trio.models import NewTask, QueueStats, TaskStatus
from tamma_trio.store.aws import SqsStore
from tests.aws_helpers import FAKE_AWS_ENV, MotoServer, create_resources, sqs_config

LABEL = "moto, not AWS"
SERVE_ARGS = ("-m", "tamma_trio", "serve")


def review(number: int) -> NewTask:
    payload = {"repository": "acme/widgets", "pull_request": {"number": number}}
    return NewTask.build("pr_review_requested", payload)


async def enqueue(config: SqsQueueConfig, count: int) -> float:
    store = SqsStore(config)
    async with store:
        started = time.perf_counter()
        for start in range(0, count, 100):
            await store.add_many([review(n) for n in range(start + 1, min(count, start + 100) + 1)])
        return time.perf_counter() - started


async def stats(config: SqsQueueConfig) -> QueueStats:
    store = SqsStore(config)
    async with store:
        return await store.stats()


def write_config(folder: Path, config: SqsQueueConfig, name: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(
        "[service]\npoll_interval = 0.5\nmax_concurrent_tasks = 20\n"
        '[service.queue]\ntype = "sqs"\n'
        f'[service.queue.sqs]\nqueue_name = "{config.queue_name}"\n'
        f'endpoint_url = "{config.endpoint_url}"\n'
        "[service.health_check]\nport = 0\n[service.metrics]\nport = 0\n"
        "[retention]\nenabled = false\n"
        '[engine]\nname = "bench.noop_engine:create"\n'
    )
    return path


def drain(config: SqsQueueConfig, count: int, daemons: int, folder: Path) -> float:
    """Seconds from the daemons' start until every task is completed."""
    import sys

    env = bench_env(**FAKE_AWS_ENV)
    started = time.perf_counter()
    with ExitStack() as stack:
        procs = []
        for n in range(daemons):
            argv = (
                sys.executable,
                *SERVE_ARGS,
                "--config",
                str(write_config(folder, config, f"d{n}")),
            )
            log = folder / f"d{n}.log"
            procs.append(
                (
                    log,
                    stack.enter_context(
                        running(argv, env=env, log_path=log, stop_signal=signal.SIGTERM, grace=30)
                    ),
                )
            )
        while trio.run(stats, config).by_status[TaskStatus.COMPLETED] < count:
            for log, proc in procs:
                if proc.poll() is not None:
                    raise SystemExit(f"a daemon exited early:\n{log_tail(log)}")
            time.sleep(1.0)  # a progress poll, not a synchronisation
        return time.perf_counter() - started


def drain_rate(count: int, daemons: int, folder: Path) -> float:
    """Tasks/s of ``daemons`` daemons draining ``count`` tasks on a fresh moto server."""
    os.environ.update(FAKE_AWS_ENV)
    server = MotoServer().start()
    try:
        config = sqs_config(server.endpoint)
        create_resources(config)
        trio.run(enqueue, config, count)
        folder.mkdir(parents=True, exist_ok=True)
        return count / drain(config, count, daemons, folder)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--daemons", type=int, default=2)
    args = parser.parse_args()
    os.environ.update(FAKE_AWS_ENV)
    server = MotoServer().start()
    try:
        config = sqs_config(server.endpoint)
        create_resources(config)
        seconds = trio.run(enqueue, config, args.tasks)
        emit(f"sqs_enqueue_tasks_per_s ({LABEL})", args.tasks / seconds)
        with TemporaryDirectory() as folder:
            seconds = drain(config, args.tasks, args.daemons, Path(folder))
        emit(f"sqs_drain_{args.daemons}_daemons_tasks_per_s ({LABEL})", args.tasks / seconds)
        emit(f"sqs_drain_{args.daemons}_daemons_seconds ({LABEL})", seconds)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
