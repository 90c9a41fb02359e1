"""Helpers shared by both sides of bench/throughput.py: processes, ports, percentiles, output."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent

# How the benchmark tells bench.huey_app (imported by Huey's consumer) where to work.
HUEY_DB_ENV = "BENCH_HUEY_DB"
HUEY_REPORT_ENV = "BENCH_HUEY_REPORT"
HUEY_EXPECT_ENV = "BENCH_HUEY_EXPECT"


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: repo root importable (bench.*), no TAMMA_* leaks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMMA_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(
    argv: Sequence[str], *, env: dict[str, str], log_path: Path, stop_signal: int, grace: float
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` with output in ``log_path``; stop it with ``stop_signal``, then kill."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(argv), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        stop(proc, stop_signal, grace)


def stop(proc: subprocess.Popen[bytes], stop_signal: int, grace: float) -> int:
    """Ask the process to stop; kill it when it is still there after ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(stop_signal)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=10)


def log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def percentile(samples: Sequence[float], pct: int) -> float:
    """Inclusive percentile (pct in 1-99); with few samples p99 is close to the maximum."""
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def emit(name: str, value: float | int | str) -> None:
    """One ``name: value`` line, flushed so a partial run still reports what it measured."""
    shown = f"{value:.2f}" if isinstance(value, float) else str(value)
    print(f"{name}: {shown}", flush=True)
