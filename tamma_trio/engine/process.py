"""Run a child in its own process group under a deadline, with its output in a capped log.

Why a process group: coding agents and test runners spawn children (node, language servers,
pytest workers). Killing only the direct child would leave those running with our worktree open,
so on timeout or cancellation the whole group gets SIGTERM, then SIGKILL after a grace period.
Why a marker (strays.py): a child that calls ``setsid`` leaves the group and may hold the output
pipes open; it is found by the run marker in its environment and killed with the group, and the
pipes are read for at most ``PIPE_GRACE`` after the run's own process has exited.
Why a cap: an agent that loops printing must not fill the disk; the log keeps its first
``log_max_bytes`` and a note of how much was dropped, and the tail stays in memory for the
escalation comment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from tamma_trio.engine.limits import LimitedRun, RunGuard
from tamma_trio.engine.strays import RUN_ENV, kill_run, new_run_marker

TAIL_BYTES = 4096
# How long the output of descendants is still read once the run's own process has exited.
PIPE_GRACE = 2.0
READ_CHUNK = 65536


@dataclass(frozen=True)
class ProcessOutcome:
    """How a group-run child ended. ``exit_code`` is negative (-signal) when it was killed."""

    exit_code: int
    duration: float
    timed_out: bool
    stdout: bytes  # the last ``keep_stdout`` bytes, for parsers such as Claude's JSON result
    tail: str  # the last few KB of stdout and stderr together
    pgid: int
    limit_exceeded: str | None = None  # "memory limit of 256 MB" when a limit stopped it


class CappedLog:
    """Appends chunks to a file until it holds ``max_bytes``, then only counts what it drops."""

    def __init__(self, write: Callable[[bytes], Awaitable[object]], max_bytes: int) -> None:
        self._write = write
        self._max_bytes = max_bytes
        self._written = 0
        self.dropped = 0
        self.tail = bytearray()

    async def write(self, chunk: bytes) -> None:
        self.tail += chunk
        del self.tail[:-TAIL_BYTES]
        room = max(self._max_bytes - self._written, 0)
        kept = chunk[:room]
        self.dropped += len(chunk) - len(kept)
        if kept:
            await self._write(kept)
            self._written += len(kept)

    async def finish(self) -> None:
        if self.dropped:
            note = f"\n[tamma-trio: log capped, {self.dropped} more bytes dropped]\n"
            await self._write(note.encode())


async def run_in_group(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    log_path: Path,
    log_max_bytes: int,
    kill_grace: float = 5.0,
    keep_stdout: int = 1 << 20,
    guard: RunGuard | None = None,
) -> ProcessOutcome:
    """Run ``argv`` in a new session; on timeout or cancellation terminate its whole group.

    Cancellation (daemon shutdown) propagates after the group is gone; a timeout returns an
    outcome with ``timed_out`` set so the caller decides how to report it. With a ``guard``,
    the run starts under its resource limits and a crossed limit kills the group at once.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = trio.current_time()
    stdout = bytearray()
    marker = new_run_marker()
    limited = guard.start(marker) if guard else None
    async with await trio.open_file(log_path, "ab") as handle:
        log = CappedLog(handle.write, log_max_bytes)
        try:
            command = limited.wrap(argv) if limited else argv
            process = await _spawn(command, cwd, {**env, RUN_ENV: marker})
        except BaseException:
            with trio.CancelScope(shield=True):
                await _close_limits(limited)
            raise
        watch = _Watch(limited)
        try:
            timed_out = await _supervise(
                process, log, stdout, timeout, kill_grace, keep_stdout, watch, marker
            )
        except BaseException:
            with trio.CancelScope(shield=True):
                await terminate_group(process, kill_grace)
            raise
        finally:
            kill_run(marker)  # whatever left the group: setsid children, daemonised tools
            with trio.CancelScope(shield=True):
                await _close_limits(limited)
                await _close_pipes(process)
                await log.finish()
    tail = bytes(log.tail).decode("utf-8", "replace")
    return ProcessOutcome(
        exit_code=process.returncode if process.returncode is not None else -signal.SIGKILL,
        duration=trio.current_time() - started,
        timed_out=timed_out,
        stdout=bytes(stdout),
        tail=tail,
        pgid=process.pid,
        limit_exceeded=watch.breach or watch.after_exit(process.returncode, tail),
    )


async def _spawn(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> trio.Process:
    """The child as leader of a new session (so of its own process group), stdin closed."""
    return await trio.lowlevel.open_process(
        list(argv),
        cwd=str(cwd),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


async def _supervise(
    process: trio.Process,
    log: CappedLog,
    stdout: bytearray,
    timeout: float,
    kill_grace: float,
    keep_stdout: int,
    watch: _Watch,
    marker: str,
) -> bool:
    """Pump both pipes into the log while waiting for the child; True when it timed out.

    Once the child has exited, a descendant that left the group may still hold the pipes:
    they are read for PIPE_GRACE more, then abandoned (the caller kills such descendants).
    """
    timed_out = False
    async with trio.open_nursery() as nursery:
        assert process.stdout is not None and process.stderr is not None
        nursery.start_soon(_pump, process.stdout, log, stdout, keep_stdout)
        nursery.start_soon(_pump, process.stderr, log, None, 0)
        with trio.move_on_after(timeout) as deadline:
            await watch.wait(process)
        if watch.breach is not None:
            # Like the kernel's OOM killer: no grace for a run already past its limit.
            signal_group(process.pid, signal.SIGKILL)
            await process.wait()
        elif deadline.cancelled_caught:
            timed_out = True
            await terminate_group(process, kill_grace)
        else:
            # Whatever the leader left behind in its group is orphaned work holding our pipes.
            signal_group(process.pid, signal.SIGKILL)
        kill_run(marker)
        nursery.cancel_scope.deadline = trio.current_time() + PIPE_GRACE
    return timed_out


async def _close_limits(limited: LimitedRun | None) -> None:
    if limited is not None:
        await limited.close()


class _Watch:
    """Waits for the child, or for its guard to report a crossed limit, whichever is first."""

    def __init__(self, guard: LimitedRun | None) -> None:
        self.guard = guard
        self.breach: str | None = None

    async def wait(self, process: trio.Process) -> None:
        if self.guard is None:
            await process.wait()
            return
        guard = self.guard
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                self.breach = await guard.watch(process.pid)
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            await process.wait()
            nursery.cancel_scope.cancel()

    def after_exit(self, returncode: int | None, tail: str) -> str | None:
        return self.guard.after_exit(returncode, tail) if self.guard else None


async def _pump(
    stream: trio.abc.ReceiveStream, log: CappedLog, keep: bytearray | None, keep_max: int
) -> None:
    while chunk := await stream.receive_some(READ_CHUNK):
        await log.write(bytes(chunk))
        if keep is not None:
            keep += chunk
            del keep[:-keep_max]


async def terminate_group(process: trio.Process, kill_grace: float) -> None:
    """SIGTERM to the group, wait up to ``kill_grace`` for the leader, then SIGKILL the group."""
    signal_group(process.pid, signal.SIGTERM)
    with trio.move_on_after(kill_grace):
        await process.wait()
    signal_group(process.pid, signal.SIGKILL)
    await process.wait()


def signal_group(pgid: int, signum: int) -> None:
    """Signal a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _close_pipes(process: trio.Process) -> None:
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            await stream.aclose()
