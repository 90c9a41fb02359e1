"""cgroup v2 enforcement of a run's limits, when the daemon owns a delegated cgroup.

Under systemd with ``Delegate=yes`` the service's cgroup is the daemon's to divide. The daemon
moves itself into a leaf (``daemon/``: once controllers are enabled below a cgroup, the kernel
lets only leaves hold processes), enables the memory and pids controllers for its children, and
gives each agent or test run a child ``run-<id>/`` with ``memory.max`` (and no swap) and
``pids.max``. The kernel then counts every process of the run together, which resource limits
cannot: RLIMIT_AS counts address space per process, and RLIMIT_NPROC counts per user and never
applies to root. CPU time is the run's ``cpu.stat`` usage_usec, watched by the daemon:
``cpu.max`` only throttles a run, it never stops one. A run past a limit is killed whole
through ``cgroup.kill``; ``memory.events`` (oom_kill) and ``pids.events`` (max) say which
limit it hit, and the run's cgroup is removed once it is empty.

Nothing here is used unless the cgroup is the daemon's alone: a shell's or a login session's
cgroup holds other processes, and moving those into a leaf would be taking them over.
``take_over`` raises CgroupUnavailableError with the reason otherwise, for the start-up line.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import trio

REQUIRED = ("memory", "pids")
LEAF = "daemon"
RUN_PREFIX = "run-"
EMPTY_POLL = 0.01
EMPTY_WAIT = 5.0


class CgroupUnavailableError(Exception):
    """Why runs cannot get cgroups of their own here (shown at start-up)."""


@dataclass(frozen=True)
class Hierarchy:
    mount: Path  # where the cgroup2 file system is mounted
    own: Path  # the daemon's cgroup in it


def find_own(self_cgroup: str, mountinfo: str) -> Hierarchy:
    """The daemon's cgroup v2 directory, from /proc/self/cgroup and /proc/self/mountinfo."""
    path = next((line[3:] for line in self_cgroup.splitlines() if line.startswith("0::")), None)
    if path is None:
        raise CgroupUnavailableError("the daemon is in no cgroup v2 hierarchy (cgroup v1 only)")
    for line in mountinfo.splitlines():
        fields, _, fs = line.partition(" - ")
        parts = fields.split()
        if fs.split()[:1] != ["cgroup2"] or len(parts) < 5:
            continue
        root, mountpoint = parts[3], Path(parts[4])
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return Hierarchy(mountpoint, mountpoint / path[len(root) :].lstrip("/"))
    raise CgroupUnavailableError(f"no cgroup2 file system shows the daemon's cgroup {path}")


def processes(cgroup: Path) -> list[int]:
    return [int(pid) for pid in (cgroup / "cgroup.procs").read_text().split()]


def check_delegated(hierarchy: Hierarchy, pid: int) -> None:
    """Raise CgroupUnavailableError unless runs can get their own memory and pids limits here."""
    own = hierarchy.own
    if own == hierarchy.mount:
        raise CgroupUnavailableError(
            f"the daemon runs in the root cgroup of {hierarchy.mount}, not in a delegated one"
            " (under systemd: Delegate=yes)"
        )
    available = (own / "cgroup.controllers").read_text().split()
    missing = [name for name in REQUIRED if name not in available]
    if missing:
        has = ", ".join(available) or "none"
        names = " and ".join(missing) + (" controllers" if len(missing) > 1 else " controller")
        raise CgroupUnavailableError(f"{names} not delegated to {own} (it has: {has})")
    if not os.access(own, os.W_OK) or not os.access(own / "cgroup.subtree_control", os.W_OK):
        raise CgroupUnavailableError(f"{own} is not writable by the daemon (not delegated to it)")
    others = [other for other in processes(own) if other != pid]
    if others:
        raise CgroupUnavailableError(
            f"{own} holds {len(others)} other process(es): it is not the daemon's own cgroup"
        )


def take_over(hierarchy: Hierarchy, pid: int) -> Path:
    """Move the daemon into a leaf, enable the controllers for runs, clear runs a crashed
    daemon left; the cgroup runs are created in. CgroupUnavailableError says why not."""
    check_delegated(hierarchy, pid)
    own = hierarchy.own
    try:
        (own / LEAF).mkdir(exist_ok=True)
        (own / LEAF / "cgroup.procs").write_text(str(pid))
        (own / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in REQUIRED))
    except OSError as exc:
        raise CgroupUnavailableError(f"cannot divide {own}: {exc.strerror or exc}") from None
    for stale in own.glob(f"{RUN_PREFIX}*"):
        RunCgroup(stale).kill()
        _remove_when_empty_now(stale)
    return own


def _remove_when_empty_now(path: Path) -> None:
    with contextlib.suppress(OSError):  # still emptying: the next start tries again
        path.rmdir()


class RunCgroup:
    """One run's child cgroup: its limits, what it hit, killing it, removing it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(
        cls, base: Path, name: str, *, memory_bytes: int | None, processes: int | None
    ) -> RunCgroup:
        run = cls(base / f"{RUN_PREFIX}{name}")
        run.path.mkdir()
        if memory_bytes is not None:
            (run.path / "memory.max").write_text(str(memory_bytes))
            swap = run.path / "memory.swap.max"
            if swap.exists():  # else a run could page out past its memory limit
                swap.write_text("0")
        if processes is not None:
            (run.path / "pids.max").write_text(str(processes))
        return run

    def counters(self, name: str) -> dict[str, int]:
        """A flat-keyed file such as memory.events ("oom_kill 1" per line); {} if unreadable."""
        try:
            text = (self.path / name).read_text()
        except OSError:
            return {}
        pairs = (line.split() for line in text.splitlines())
        return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2}

    def cpu_seconds(self) -> float:
        return self.counters("cpu.stat").get("usage_usec", 0) / 1_000_000

    def hit(self, *, memory: bool, processes: bool, max_cpu_seconds: float | None) -> str | None:
        """Which of the limits set the run hit: "memory", "processes", "cpu", or None."""
        if memory and self.counters("memory.events").get("oom_kill", 0) > 0:
            return "memory"
        if processes and self.counters("pids.events").get("max", 0) > 0:
            return "processes"
        if max_cpu_seconds is not None and self.cpu_seconds() >= max_cpu_seconds:
            return "cpu"
        return None

    def populated(self) -> bool:
        return self.counters("cgroup.events").get("populated", 0) == 1

    def kill(self) -> None:
        """SIGKILL every process of the run, forks included (cgroup.kill, Linux 5.14+)."""
        try:
            (self.path / "cgroup.kill").write_text("1")
            return
        except OSError:
            pass
        for pid in _processes_or_none(self.path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue

    async def remove(self) -> bool:
        """Kill what is left, wait for the kernel to empty the cgroup, then remove it; False
        when it could not be removed (the next start clears it)."""
        self.kill()
        # The kernel reports emptiness only in cgroup.events (inotify would be the push way):
        # a few polls, since cgroup.kill has already sent every SIGKILL.
        for _ in range(round(EMPTY_WAIT / EMPTY_POLL)):
            if not self.populated():
                break
            await trio.sleep(EMPTY_POLL)
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


def _processes_or_none(path: Path) -> list[int]:
    try:
        return processes(path)
    except OSError:
        return []


class Cgroups:
    """The daemon's decision, made once at start: the base runs are created in, or why not."""

    base: Path | None = None
    reason: str = "no limits are set"

    @classmethod
    def enable(
        cls,
        proc: Path = Path("/proc"),
        pid: int | None = None,
    ) -> Path | None:
        """Take the daemon's cgroup over once per process (again would nest a leaf in the
        leaf); the base for runs, or None with ``reason`` set."""
        if cls.base is not None:
            return cls.base
        try:
            hierarchy = find_own(
                (proc / "self" / "cgroup").read_text(), (proc / "self" / "mountinfo").read_text()
            )
            cls.base = take_over(hierarchy, pid if pid is not None else os.getpid())
        except CgroupUnavailableError as exc:
            cls.base, cls.reason = None, str(exc)
        except OSError as exc:
            cls.base, cls.reason = None, f"cannot read the cgroup files: {exc.strerror or exc}"
        else:
            cls.reason = f"runs get child cgroups of {cls.base}"
        return cls.base
