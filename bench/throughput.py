"""Side-by-side throughput: tamma-trio (`tamma-trio serve`) against Huey's SqliteHuey consumer.

    python bench/throughput.py            # the full run, about three minutes on 2 cores
    python bench/throughput.py --quick    # smaller counts, to check the bench itself
    python bench/throughput.py --only drain         # some phases only (comma list)

Prints ``name: value`` lines (rates in tasks/s, latencies in ms, memory in MiB). Everything runs
on loopback in a temporary directory that is removed afterwards; each phase has a deadline and
every child process is stopped (SIGTERM/SIGINT, then SIGKILL) however the run ends.

What each figure means:
- drain: N tasks queued before the daemon or consumer starts, then processed to completion,
  timed from the first task's start to the last one's finish (both sides, from their own
  records: tamma-trio's started_at/finished_at, Huey's EXECUTING/COMPLETE signals). Huey runs
  with its defaults (SqliteHuey: WAL, SQLite's default synchronous FULL) and thread workers, at
  its default of 1 worker and at tamma-trio's concurrency; the ratio uses the faster Huey.
- intake: tasks added through POST /api/tasks by concurrent httpx clients (keep-alive), while
  the daemon also runs them; then the same with bench.rawhttp clients, whose CPU cost is
  negligible, to show how much of the figure is the client's (httpx: ~1 ms CPU a request);
  then through POST /api/tasks/batch, 100 tasks a request (httpx clients).
- pickup: single tasks added to an idle daemon/consumer after a random idle gap;
  tamma-trio: created_at -> started_at; Huey: enqueue -> EXECUTING.
- health: /health latency (one keep-alive client, every 10 ms) during a drain of the RSS run.
- rss: the daemon's VmHWM after draining the RSS run's queue.

Phases (``--only``, default all): drain, intake, pickup, health (the RSS run: /health latency
and RSS), huey (Huey's drains and pickups). Intake and pickup share one daemon run when both
are chosen. drain_ratio_vs_huey needs both drain and huey.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/throughput.py`

from bench import huey_side, tamma_side
from bench.common import emit, percentile

PHASE_TIMEOUT = 300.0
PHASES = ("drain", "intake", "pickup", "health", "huey")


class Budget:
    """The whole run's deadline; each phase gets what is left, at most PHASE_TIMEOUT."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def phase(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the benchmark ran out of time")
        return min(left, PHASE_TIMEOUT)


def parse_phases(text: str) -> frozenset[str]:
    """A comma list of PHASES; unknown names are an error, not silently nothing measured."""
    chosen = frozenset(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(chosen - set(PHASES))
    if unknown or not chosen:
        given = ", ".join(unknown) or "(none given)"
        raise argparse.ArgumentTypeError(
            f"unknown phase(s) {given}; choose from {', '.join(PHASES)}"
        )
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drain-tasks", type=int, default=20_000)
    parser.add_argument("--rss-tasks", type=int, default=100_000)
    parser.add_argument("--intake-tasks", type=int, default=8_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pickup-samples", type=int, default=60)
    parser.add_argument("--huey-pickup-samples", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=20, help="max_concurrent_tasks")
    parser.add_argument(
        "--idle-gap", type=float, nargs=2, default=(0.2, 1.0), metavar=("MIN", "MAX")
    )
    parser.add_argument("--log-level", default="info", help="the daemon's [log] level")
    parser.add_argument(
        "--only",
        type=parse_phases,
        default=frozenset(PHASES),
        metavar="PHASES",
        help=f"comma list of phases to run (default all: {','.join(PHASES)})",
    )
    parser.add_argument("--skip-huey", action="store_true", help="the same as leaving out huey")
    parser.add_argument("--timeout", type=float, default=1200, help="bound on the whole run (s)")
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    args = parser.parse_args(argv)
    if args.skip_huey:
        args.only -= {"huey"}
    if args.quick:
        args.drain_tasks, args.rss_tasks, args.intake_tasks = 2_000, 5_000, 800
        args.pickup_samples, args.huey_pickup_samples = 10, 5
    return args


def emit_latencies(prefix: str, seconds: list[float]) -> None:
    millis = [value * 1000 for value in seconds]
    emit(f"{prefix}_p50_ms", percentile(millis, 50))
    emit(f"{prefix}_p99_ms", percentile(millis, 99))
    emit(f"{prefix}_samples", len(millis))


async def run_tamma(args: argparse.Namespace, workdir: Path, budget: Budget) -> float | None:
    """The chosen tamma-trio phases; the drain rate when the drain ran."""
    rate = None
    if "drain" in args.only:
        rate = await tamma_side.drain(
            workdir, args.drain_tasks, args.concurrency, args.log_level, budget.phase()
        )
        emit("tamma_drain_tasks_per_s", rate)
    if args.only & {"intake", "pickup"}:
        await run_intake_and_pickup(args, workdir, budget)
    if "health" in args.only:
        rss, health = await tamma_side.loaded(
            workdir, args.rss_tasks, args.log_level, budget.phase()
        )
        emit("tamma_health_p50_ms_during_drain", percentile(health, 50))
        emit("tamma_health_p99_ms_during_drain", percentile(health, 99))
        emit("tamma_health_samples", len(health))
        emit(f"tamma_peak_rss_mb_{args.rss_tasks}_queued", rss)
    return rate


async def run_intake_and_pickup(args: argparse.Namespace, workdir: Path, budget: Budget) -> None:
    rates, pickups = await tamma_side.intake_and_pickup(
        workdir,
        count=args.intake_tasks if "intake" in args.only else 0,
        clients=args.clients,
        samples=args.pickup_samples if "pickup" in args.only else 0,
        gaps=tuple(args.idle_gap),
        log_level=args.log_level,
        timeout=budget.phase(),
    )
    if rates is not None:
        emit("tamma_intake_tasks_per_s", rates.httpx_clients)
        emit("tamma_intake_raw_client_tasks_per_s", rates.raw_clients)
        emit(f"tamma_intake_batched_{tamma_side.BATCH_SIZE}_tasks_per_s", rates.batched)
    if pickups:
        emit_latencies("tamma_pickup", pickups)


def run_huey(args: argparse.Namespace, workdir: Path, budget: Budget) -> float:
    rates = {}
    for workers in sorted({1, args.concurrency}):
        rates[workers] = huey_side.drain(workdir, args.drain_tasks, workers, budget.phase())
        emit(f"huey_drain_tasks_per_s_w{workers}", rates[workers])
    pickups = huey_side.pickup(
        workdir, args.huey_pickup_samples, tuple(args.idle_gap), budget.phase()
    )
    emit_latencies("huey_pickup", pickups)
    return max(rates.values())


async def main(args: argparse.Namespace) -> None:
    budget = Budget(args.timeout)
    emit("cpus", os.cpu_count() or 0)
    emit("load_average_1m", os.getloadavg()[0])
    emit("phases", ",".join(name for name in PHASES if name in args.only))
    emit("drain_tasks", args.drain_tasks)
    emit("tamma_log_level", args.log_level)
    with tempfile.TemporaryDirectory(prefix="tamma-bench-") as tmp:
        workdir = Path(tmp)
        tamma_rate = await run_tamma(args, workdir, budget)
        huey_rate = run_huey(args, workdir, budget) if "huey" in args.only else None
    if tamma_rate is not None and huey_rate is not None:
        emit("drain_ratio_vs_huey", tamma_rate / huey_rate)


if __name__ == "__main__":
    trio.run(main, parse_args())
