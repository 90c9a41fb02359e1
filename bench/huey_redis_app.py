"""Huey's Redis half of bench/scale.py: a RedisHuey with its defaults and a no-op task.

Run by `huey_consumer bench.huey_redis_app.huey -k thread -w N` on the benchmark's redis-server;
timings come from Huey's signals (bench/huey_recorder.py), like the SqliteHuey side.
"""

from __future__ import annotations

import os

from huey import RedisHuey

from bench.common import HUEY_DB_ENV
from bench.huey_recorder import install

# HUEY_DB_ENV holds the Redis URL here; the queue name keeps runs apart on one server.
huey = RedisHuey(os.environ.get("BENCH_HUEY_NAME", "bench"), url=os.environ[HUEY_DB_ENV])


@huey.task()  # type: ignore[untyped-decorator]  # huey ships no type hints
def noop() -> None:
    return None


RECORDER = install(huey)
