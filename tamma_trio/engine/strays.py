"""Find and kill what an agent or test run started, even when it left the process group.

A child that calls ``setsid`` (a daemonising tool, a language server, ``setsid sleep 600``)
leaves the run's process group, so killing the group misses it, and it may keep the run's
output pipes open. Every run therefore carries a marker in its environment, which children
inherit whatever session they move to: ``TAMMA_TRIO_RUN=<daemon pid>.<daemon start>.<run>``.
``kill_run`` kills every process of ours carrying one run's marker; ``kill_leftovers`` kills
those of runs whose daemon is gone (killed with -9), at the next start.

Linux only (/proc); elsewhere both find nothing and the process-group kill is all there is.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
from collections.abc import Iterator

RUN_ENV = "TAMMA_TRIO_RUN"
_PROC = "/proc"
_runs = itertools.count(1)


def new_run_marker() -> str:
    """A marker no other run, of this daemon or another, carries."""
    pid = os.getpid()
    return f"{pid}.{_start_time(pid)}.{next(_runs)}"


def kill_run(marker: str) -> list[int]:
    """SIGKILL every process carrying ``marker``; return their pids."""
    killed = []
    for pid, found in _marked_processes():
        if found == marker:
            _kill(pid)
            killed.append(pid)
    return killed


def kill_leftovers() -> list[int]:
    """SIGKILL processes of runs whose daemon no longer exists; return their pids."""
    killed = []
    for pid, marker in _marked_processes():
        daemon_pid, _, rest = marker.partition(".")
        started, _, _run = rest.partition(".")
        if daemon_pid.isdigit() and _start_time(int(daemon_pid)) != started:
            _kill(pid)
            killed.append(pid)
    return killed


def _marked_processes() -> Iterator[tuple[int, str]]:
    """(pid, marker) of every process we may read that carries a run marker."""
    prefix = f"{RUN_ENV}=".encode()
    own = os.getpid()
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit() or int(entry) == own:
            continue
        try:
            with open(f"{_PROC}/{entry}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:  # gone, or another user's
            continue
        for variable in environ.split(b"\0"):
            if variable.startswith(prefix):
                yield int(entry), variable[len(prefix) :].decode("ascii", "replace")
                break


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), so a
    recycled pid is never taken for the daemon that once had it; "" when there is none."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else ""


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
