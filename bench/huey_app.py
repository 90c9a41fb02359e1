"""Huey's side of bench/throughput.py: a SqliteHuey with its defaults and a no-op task.

The consumer runs in its own process (`huey_consumer bench.huey_app.huey -k thread`), so the
timing comes from Huey's own signals, recorded inside that process and written to a JSON file
the benchmark reads: the first EXECUTING and the last COMPLETE of a drain, and each task's
EXECUTING time for pickup latency.
"""

from __future__ import annotations

import os

from huey import SqliteHuey

from bench.common import HUEY_DB_ENV
from bench.huey_recorder import install

huey = SqliteHuey(filename=os.environ[HUEY_DB_ENV])


@huey.task()  # type: ignore[untyped-decorator]  # huey ships no type hints
def noop() -> None:
    return None


RECORDER = install(huey)
