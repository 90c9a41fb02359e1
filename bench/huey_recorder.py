"""Timings of a Huey consumer, taken from Huey's own signals inside the consumer's process.

Both Huey apps of the benchmarks (bench/huey_app.py on SQLite, bench/huey_redis_app.py on Redis)
record the first EXECUTING and the last COMPLETE of a drain, and each task's EXECUTING time,
then write them to a JSON file the benchmark reads.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from huey.signals import SIGNAL_COMPLETE, SIGNAL_EXECUTING

from bench.common import HUEY_EXPECT_ENV, HUEY_REPORT_ENV


class Recorder:
    """Thread-safe timings; writes the report once ``expect`` tasks have completed."""

    def __init__(self, report: Path | None, expect: int) -> None:
        self.report, self.expect = report, expect
        self.lock = threading.Lock()
        self.first_executing: float | None = None
        self.last_complete = 0.0
        self.completed = 0
        self.executing: dict[str, float] = {}

    def on_executing(self, task_id: str) -> None:
        now = time.time()
        with self.lock:
            self.first_executing = self.first_executing or now
            self.executing[task_id] = now

    def on_complete(self) -> None:
        with self.lock:
            self.completed += 1
            self.last_complete = time.time()
            if self.completed == self.expect and self.report is not None:
                self.report.write_text(json.dumps(self.summary()))

    def summary(self) -> dict[str, Any]:
        return {
            "first_executing": self.first_executing,
            "last_complete": self.last_complete,
            "completed": self.completed,
            "executing": self.executing,
        }


def install(huey: Any) -> Recorder:
    """A Recorder set up from the environment, fed by ``huey``'s signals."""
    report = os.environ.get(HUEY_REPORT_ENV)
    recorder = Recorder(Path(report) if report else None, int(os.environ.get(HUEY_EXPECT_ENV, "0")))

    @huey.signal(SIGNAL_EXECUTING)  # type: ignore[untyped-decorator]
    def _executing(signal: str, task: Any, *args: Any) -> None:
        recorder.on_executing(task.id)

    @huey.signal(SIGNAL_COMPLETE)  # type: ignore[untyped-decorator]
    def _complete(signal: str, task: Any, *args: Any) -> None:
        recorder.on_complete()

    return recorder
