"""Launcher: set resource limits on this process, then exec the real command.

Run as ``python -I -S limit_exec.py SPEC -- argv...`` where SPEC is a JSON object with any of
``memory_bytes``, ``cpu_seconds``, ``processes``, or ``cgroup``: the run's cgroup directory,
which this process enters (writing its pid to cgroup.procs) so that everything the command
starts is counted there from its first instruction. It imports nothing from tamma_trio and runs
between the daemon's spawn and the agent's exec, so the limits are in place before the agent's
first instruction and are inherited by everything it starts. Doing this here instead of in a
``preexec_fn`` keeps the daemon's own fork free of Python code: the daemon has threads (the
SQLite runner), and code run between fork and exec in a threaded process can deadlock.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any

EXIT_BAD_USAGE = 125
EXIT_NOT_FOUND = 127


def own_task_count(uid: int) -> int:
    """Processes and threads of ``uid`` now: RLIMIT_NPROC counts them all, not just ours."""
    count = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == uid:
                count += len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue
    return count


def apply(spec: dict[str, Any]) -> None:
    cgroup = spec.get("cgroup")
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    memory = spec.get("memory_bytes")
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = spec.get("cpu_seconds")
    if cpu:
        # SIGXCPU at the soft limit (the exit status names the limit), SIGKILL a second later.
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    processes = spec.get("processes")
    uid = os.getuid()
    # The kernel never applies RLIMIT_NPROC to root; the daemon's watchdog covers that case.
    if processes and uid != 0:
        ceiling = own_task_count(uid) + processes
        resource.setrlimit(resource.RLIMIT_NPROC, (ceiling, ceiling))


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: limit_exec.py SPEC -- COMMAND [ARG...]\n")
        return EXIT_BAD_USAGE
    try:
        apply(json.loads(argv[1]))
    except OSError as exc:  # never run the command without the limits it was given
        sys.stderr.write(f"cannot apply the run's limits: {exc}\n")
        return EXIT_BAD_USAGE
    command = argv[3:]
    try:
        os.execvp(command[0], command)  # noqa: S606 (argv list from the daemon, no shell)
    except OSError as exc:
        sys.stderr.write(f"cannot run {command[0]!r}: {exc.strerror}\n")
    return EXIT_NOT_FOUND


if __name__ == "__main__":
    sys.exit(main(sys.argv))
