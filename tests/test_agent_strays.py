"""Agents that leave detached children behind (``setsid sleep 600`` holding the output pipes):
the run ends within the pipe grace after the agent exits, and no process it started survives
the run, its timeout, its cancellation, or a daemon killed with -9 (swept at the next start)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tamma_trio.engine import strays
from tamma_trio.engine.agent import AgentRequest, AgentRunner
from tamma_trio.engine.process import PIPE_GRACE
from tamma_trio.errors import EngineError
from tests import test_lifecycle
from tests.test_lifecycle import Daemon, write_config
from tests.workflow_helpers import agent_argv, process_state

daemons = test_lifecycle.daemons  # the fixture: every daemon a test starts is killed at the end


def request(tmp_path: Path) -> AgentRequest:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return AgentRequest("implement", "Issue: #3\n", workdir, tmp_path / "task", 3, "Do it", "b")


def runner(pidfile: Path, *extra: str, timeout: float = 30) -> AgentRunner:
    return AgentRunner(
        agent_argv("detached.py", str(pidfile), *extra),
        timeout=timeout,
        log_max_bytes=10_000,
        kill_grace=0.3,
    )


def pids(pidfile: Path) -> tuple[int, int]:
    agent, child = (int(part) for part in pidfile.read_text().split())
    return agent, child


async def gone(pid: int, within: float = 5.0) -> bool:
    """SIGKILL lands when the process next runs: poll, bounded."""
    with trio.move_on_after(within):
        while process_state(pid) not in (None, "Z"):
            await trio.sleep(0.01)
        return True
    return False


async def test_a_detached_child_does_not_hold_the_run_and_does_not_survive_it(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "pids"
    with trio.fail_after(PIPE_GRACE + 20):  # the child would hold the pipes for 600 s
        result = await runner(pidfile).run(request(tmp_path))
    agent, child = pids(pidfile)
    assert os.getpgid(0) != agent  # the agent had its own group; the child left it (setsid)
    assert await gone(child)
    assert "left a detached child behind" in result.text


@pytest.mark.parametrize("ending", ["timeout", "cancellation"])
async def test_a_hung_agent_and_its_detached_child_are_both_killed(
    tmp_path: Path, ending: str
) -> None:
    pidfile = tmp_path / "pids"
    agent_runner = runner(pidfile, "--hang", timeout=1.0 if ending == "timeout" else 60)
    with trio.fail_after(30):
        if ending == "timeout":
            with pytest.raises(EngineError) as caught:
                await agent_runner.run(request(tmp_path))
            assert caught.value.code == "agent_timeout"
        else:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(agent_runner.run, request(tmp_path))
                while not (pidfile.exists() and pidfile.read_text().strip()):
                    await trio.sleep(0.02)
                nursery.cancel_scope.cancel()
    agent, child = pids(pidfile)
    assert await gone(agent) and await gone(child)


# Leaves its session like a daemonising child, then says so: once the line is read, the
# process runs with the marker in its environment (exec is over), so /proc shows it.
_DETACHED_SLEEPER = "import os, time; os.setsid(); print('ready', flush=True); time.sleep(600)"


@contextlib.contextmanager
def marked_process(marker: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, strays.RUN_ENV: marker}
    argv = [sys.executable, "-c", _DETACHED_SLEEPER]
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE) as process:
        try:
            assert process.stdout is not None and process.stdout.readline() == b"ready\n"
            yield process
        finally:
            process.kill()


def dead_pid() -> int:
    """A daemon pid that no longer exists."""
    with subprocess.Popen([sys.executable, "-c", "pass"]) as finished:
        pass
    return finished.pid


# Runs of daemons that earlier tests killed with -9 may be swept too: they are leftovers as
# well, so the tests name the processes they made and do not count the others.


def test_leftovers_of_a_dead_daemon_are_killed_and_live_runs_are_not() -> None:
    with (
        marked_process(f"{dead_pid()}.12345.1") as orphan,
        marked_process(strays.new_run_marker()) as live,  # a run of this (live) process
    ):
        killed = strays.kill_leftovers()
        assert orphan.wait(timeout=10) == -9
        assert orphan.pid in killed
        assert live.pid not in killed
        assert live.poll() is None


def test_a_starting_daemon_kills_what_a_dead_daemon_s_runs_left(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    with marked_process(f"{dead_pid()}.12345.7") as orphan:  # an agent's child; daemon got -9
        daemon = Daemon(write_config(tmp_path, {})).start()
        daemons.append(daemon)
        daemon.wait_listening()
        assert orphan.wait(timeout=10) == -9
        assert re.search(
            r"killed [1-9][0-9]* process\(es\) left by runs of a daemon that died",
            daemon.err.read_text(),
        )
