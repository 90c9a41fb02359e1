"""Memory, CPU-time and process-count limits for one agent or test run.

With a delegated cgroup (cgroups.py) each run gets a child cgroup and the kernel counts the
whole run. Without one, two layers, because neither alone is enough:

- Resource limits set in the child before it execs (``limit_exec.py``): address space
  (RLIMIT_AS), CPU time (RLIMIT_CPU) and process count (RLIMIT_NPROC). The kernel enforces them
  at once, so a sudden allocation fails instead of taking the host's memory. But each counts
  per process (NPROC per user, and never for root), so a run of many processes could stay under
  each process's limit while the whole run is over.
- A watchdog in the daemon that samples the whole run (every process of its session) from
  /proc and reports the first limit the sum crosses; the caller then kills the group.

A breach is also read from how the run ended: death by SIGXCPU, or an allocation failure in its
output, since a process stopped by RLIMIT_AS sees a failed allocation, not a signal.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from tamma_trio.engine.cgroups import Cgroups, RunCgroup

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.25
LAUNCHER = Path(__file__).with_name("limit_exec.py")
MB = 1024 * 1024

# What a process says when RLIMIT_AS refuses it memory (Python, glibc/C, C++, Go, Node, Rust).
ALLOCATION_FAILED = re.compile(
    r"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory|"
    r"memory allocation of \d+ bytes failed|JavaScript heap out of memory",
    re.IGNORECASE,
)
# What a process says when RLIMIT_NPROC refuses it a fork (Python, bash, C).
FORK_FAILED = re.compile(
    r"BlockingIOError|Resource temporarily unavailable|fork: retry|Cannot fork", re.IGNORECASE
)


@dataclass(frozen=True)
class Limits:
    """The limits of one kind of run; None means no limit beyond the run's timeout."""

    max_memory_mb: int | None = None
    max_cpu_seconds: float | None = None
    max_processes: int | None = None

    def __bool__(self) -> bool:
        values = (self.max_memory_mb, self.max_cpu_seconds, self.max_processes)
        return any(value is not None for value in values)

    def describe(self) -> str:
        parts = []
        if self.max_memory_mb is not None:
            parts.append(f"memory {self.max_memory_mb} MB")
        if self.max_cpu_seconds is not None:
            parts.append(f"CPU {self.max_cpu_seconds:g} s")
        if self.max_processes is not None:
            parts.append(f"{self.max_processes} processes")
        return ", ".join(parts) or "none"

    def memory(self) -> str:
        return f"memory limit of {self.max_memory_mb} MB"

    def cpu(self) -> str:
        return f"CPU limit of {self.max_cpu_seconds:g} s"

    def processes(self) -> str:
        return f"process limit of {self.max_processes}"


@dataclass(frozen=True)
class Usage:
    """What a run's processes hold at one moment (CPU includes their reaped children)."""

    processes: int
    rss_bytes: int
    cpu_seconds: float


def breached(limits: Limits, usage: Usage) -> str | None:
    """The first limit ``usage`` is over, as "memory limit of 256 MB", else None."""
    if limits.max_memory_mb is not None and usage.rss_bytes > limits.max_memory_mb * MB:
        return limits.memory()
    if limits.max_cpu_seconds is not None and usage.cpu_seconds >= limits.max_cpu_seconds:
        return limits.cpu()
    if limits.max_processes is not None and usage.processes > limits.max_processes:
        return limits.processes()
    return None


def breach_from_exit(limits: Limits, returncode: int | None, output_tail: str) -> str | None:
    """A limit the kernel enforced on its own: SIGXCPU, a refused allocation or fork."""
    if returncode is None or returncode == 0:
        return None
    if limits.max_cpu_seconds is not None and returncode == -signal.SIGXCPU:
        return limits.cpu()
    if limits.max_memory_mb is not None and ALLOCATION_FAILED.search(output_tail):
        return limits.memory()
    if limits.max_processes is not None and FORK_FAILED.search(output_tail):
        return limits.processes()
    return None


def launcher_argv(limits: Limits, argv: Sequence[str]) -> list[str]:
    """``argv`` behind the launcher that applies ``limits`` before exec (argv list, no shell)."""
    spec: dict[str, int] = {}
    if limits.max_memory_mb is not None:
        spec["memory_bytes"] = limits.max_memory_mb * MB
    if limits.max_cpu_seconds is not None:
        spec["cpu_seconds"] = max(1, round(limits.max_cpu_seconds))
    if limits.max_processes is not None:
        spec["processes"] = limits.max_processes
    return [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(spec), "--", *argv]


class SessionSampler:
    """Sums usage over the processes of one session, read from Linux's /proc."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self.proc = proc
        self.page_size = os.sysconf("SC_PAGE_SIZE")
        self.ticks = os.sysconf("SC_CLK_TCK")

    def available(self) -> bool:
        return (self.proc / "self" / "stat").exists()

    def sample(self, session: int) -> Usage:
        processes = rss_pages = ticks = 0
        for stat in self._stats():
            fields = stat.rsplit(")", 1)[-1].split()
            # After the command: state ppid pgrp session ... utime(11) stime(12) cutime cstime
            if len(fields) < 22 or int(fields[3]) != session or fields[0] == "Z":
                continue
            processes += 1
            ticks += sum(int(value) for value in fields[11:15])
            rss_pages += int(fields[21])
        return Usage(processes, rss_pages * self.page_size, ticks / self.ticks)

    def _stats(self) -> list[str]:
        stats = []
        for entry in os.listdir(self.proc):
            if entry.isdigit():
                try:
                    stats.append((self.proc / entry / "stat").read_text())
                except OSError:  # gone between listing and reading
                    continue
        return stats


class RlimitRun:
    """One run under resource limits set before exec, watched in /proc."""

    def __init__(self, limits: Limits, sampler: SessionSampler) -> None:
        self.limits = limits
        self.sampler = sampler

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return launcher_argv(self.limits, argv) if self.limits else list(argv)

    async def watch(self, session: int) -> str:
        """Return the first limit the session's processes cross (never returns if none is)."""
        if not self.limits or not self.sampler.available():
            await trio.sleep_forever()
        while True:
            usage = await trio.to_thread.run_sync(self.sampler.sample, session)
            found = breached(self.limits, usage)
            if found is not None:
                return found
            await trio.sleep(WATCH_INTERVAL)

    def after_exit(self, returncode: int | None, output_tail: str) -> str | None:
        return breach_from_exit(self.limits, returncode, output_tail) if self.limits else None

    async def close(self) -> None:
        return None


class CgroupRun:
    """One run in a child cgroup of its own: the kernel counts every process of it."""

    def __init__(self, limits: Limits, cgroup: RunCgroup) -> None:
        self.limits = limits
        self.cgroup = cgroup

    def wrap(self, argv: Sequence[str]) -> list[str]:
        spec = json.dumps({"cgroup": str(self.cgroup.path)})
        return [sys.executable, "-I", "-S", str(LAUNCHER), spec, "--", *argv]

    async def watch(self, session: int) -> str:
        while True:
            hit = await trio.to_thread.run_sync(self._hit)
            if hit is not None:
                self.cgroup.kill()  # the whole run, also what left the process group
                return hit
            await trio.sleep(WATCH_INTERVAL)

    def after_exit(self, returncode: int | None, output_tail: str) -> str | None:
        return self._hit()

    async def close(self) -> None:
        if not await self.cgroup.remove():
            log.warning("could not remove %s; the next start clears it", self.cgroup.path)

    def _hit(self) -> str | None:
        limits = self.limits
        hit = self.cgroup.hit(
            memory=limits.max_memory_mb is not None,
            processes=limits.max_processes is not None,
            max_cpu_seconds=limits.max_cpu_seconds,
        )
        names = {"memory": limits.memory, "processes": limits.processes, "cpu": limits.cpu}
        return None if hit is None else names[hit]()


LimitedRun = RlimitRun | CgroupRun


class RunGuard:
    """Applies ``limits`` to one kind of run (the agent, the tests) and names a breach."""

    def __init__(self, limits: Limits, who: str, sampler: SessionSampler | None = None) -> None:
        self.limits = limits
        self.who = who
        self.sampler = sampler or SessionSampler()

    def start(self, name: str) -> LimitedRun:
        """The limits of one run (``name`` unique to it): a child cgroup when the daemon
        took one over at start, else resource limits and the /proc watchdog."""
        base = Cgroups.base
        if self.limits and base is not None:
            memory = self.limits.max_memory_mb
            try:
                cgroup = RunCgroup.create(
                    base,
                    name,
                    memory_bytes=memory * MB if memory is not None else None,
                    processes=self.limits.max_processes,
                )
            except OSError as exc:
                log.warning("no cgroup for this run (%s); resource limits instead", exc)
            else:
                return CgroupRun(self.limits, cgroup)
        return RlimitRun(self.limits, self.sampler)

    def message(self, breach: str) -> str:
        """ "the agent exceeded its memory limit of 256 MB; its process group was killed"."""
        its = _its(self.who)
        return f"{self.who} exceeded {its} {breach}; {its} process group was killed"


def _its(who: str) -> str:
    return "their" if who.endswith("s") else "its"


def enforcement(sampler: SessionSampler | None = None) -> str:
    """Which mechanism enforces limits on this host, and why not cgroups, for the start-up
    line (after ``Cgroups.enable``)."""
    if Cgroups.base is not None:
        return (
            f"cgroup v2 ({Cgroups.reason}: memory.max, pids.max, CPU time from cpu.stat,"
            " cgroup.kill)"
        )
    sampler = sampler or SessionSampler()
    parts = ["resource limits set before exec (address space, CPU time, process count)"]
    if sampler.available():
        parts.append("a watchdog over each run's processes in /proc")
    text = " and ".join(parts)
    if os.getuid() == 0:
        text += " (as root the kernel ignores the process count: the watchdog enforces it)"
    return f"{text}; not cgroup v2: {Cgroups.reason}"
