"""CLI start-up: `tamma-trio --help` and `tamma-trio tasks list`, beside `python -c pass`.

Each command runs ``--runs`` times as a fresh process (what an operator's shell does); the
median and the fastest run, and the median CPU time, are printed as ``name: value`` lines.
The list runs against a SQLite file of ``--tasks`` finished tasks in a temporary directory, so
it measures start-up plus one small query, not a big table; its output goes to a pipe, so it is
the plain-text table (at a terminal rich draws it, and loads with it).

    python bench/cli.py [--runs 15] [--tasks 200]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from tamma_trio.models import NewTask
from tamma_trio.store.sqlite import SqliteStore


def tamma_command() -> list[str]:
    """The console script next to this interpreter (what `pip install` put on PATH)."""
    script = Path(sys.executable).with_name("tamma-trio")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tamma_trio"]


def seed(path: Path, count: int) -> None:
    async def fill() -> None:
        payload = {"repository": "acme/widgets", "pull_request": {"number": 1}}
        news = [NewTask.build("pr_review_requested", payload) for _ in range(count)]
        async with SqliteStore(path, synchronous="NORMAL") as store:
            await store.add_many(news)

    trio.run(fill)


def timed(
    argv: list[str], runs: int, cwd: Path, env: dict[str, str]
) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each run. On a loaded machine the wall time
    includes waiting for a core; the CPU time is what the command itself costs."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def report(name: str, times: tuple[list[float], list[float]]) -> None:
    walls, cpus = times
    print(f"{name}_median_ms: {statistics.median(walls) * 1000:.0f}")
    print(f"{name}_min_ms: {min(walls) * 1000:.0f}")
    print(f"{name}_cpu_median_ms: {statistics.median(cpus) * 1000:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tamma-bench-cli-") as scratch:
        cwd = Path(scratch)
        database = cwd / "tamma.db"
        seed(database, args.tasks)
        (cwd / "tamma.toml").write_text(
            f"[service.queue.sqlite]\npath = {json.dumps(str(database))}\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAMMA_")}
        tamma = tamma_command()
        report("python_c_pass", timed([sys.executable, "-c", "pass"], args.runs, cwd, env))
        report("help", timed([*tamma, "--help"], args.runs, cwd, env))
        report("tasks_list", timed([*tamma, "tasks", "list"], args.runs, cwd, env))


if __name__ == "__main__":
    main()
