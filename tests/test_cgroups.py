"""cgroup v2 enforcement: finding the daemon's cgroup, the reasons it cannot be used, and the
file protocol of a run's cgroup.

This test machine's cgroup v2 hierarchy has no memory or pids controller (they are bound to
cgroup v1), so memory.max and pids.max cannot be enforced here. Their protocol (the files the
daemon writes, the counters the kernel keeps in memory.events and pids.events) is checked
against a directory tree in tmp_path laid out like cgroupfs. What needs no controller runs in a
real child cgroup where the hierarchy is writable (root): entering it before exec, CPU time from
cpu.stat stopping a spinner, cgroup.kill ending a process that left the group, removal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tamma_trio.engine.cgroups import (
    Cgroups,
    CgroupUnavailableError,
    Hierarchy,
    RunCgroup,
    check_delegated,
    find_own,
    processes,
    take_over,
)
from tamma_trio.engine.limits import LAUNCHER, CgroupRun, Limits, RunGuard
from tamma_trio.engine.process import run_in_group
from tests.test_e2e_workflow import clean_env, until, write_config
from tests.workflow_helpers import AGENTS, group_gone, process_state

MOUNTINFO = (
    "24 31 0:22 / /proc rw,nosuid - proc proc rw\n"
    "30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate\n"
)
SERVICE = "0::/system.slice/tamma-trio.service\n"


def fake_cgroupfs(tmp_path: Path, controllers: str = "cpu memory pids", pids: str = "") -> Path:
    """A service cgroup as systemd's Delegate=yes leaves it: its controllers, its processes."""
    own = tmp_path / "cgroup" / "system.slice" / "tamma-trio.service"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text(controllers + "\n")
    (own / "cgroup.subtree_control").write_text("\n")
    (own / "cgroup.procs").write_text(pids or f"{os.getpid()}\n")
    return own


def hierarchy(tmp_path: Path) -> Hierarchy:
    return Hierarchy(tmp_path / "cgroup", tmp_path / "cgroup" / "system.slice/tamma-trio.service")


# --- finding the daemon's cgroup ----------------------------------------------------------------


def test_the_own_cgroup_is_found_from_proc_self() -> None:
    found = find_own(SERVICE, MOUNTINFO)
    assert found == Hierarchy(
        Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/system.slice/tamma-trio.service")
    )
    # a container sees its own cgroup as the root of a mount made from a subtree
    nested = "40 31 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    inside = find_own("0::/docker/abc/app\n", nested)
    assert inside.own == Path("/sys/fs/cgroup/app")


def test_cgroup_v1_only_or_no_cgroup2_mount_is_named() -> None:
    with pytest.raises(CgroupUnavailableError, match="no cgroup v2 hierarchy"):
        find_own("4:memory:/x\n1:cpu:/x\n", MOUNTINFO)
    with pytest.raises(CgroupUnavailableError, match="no cgroup2 file system"):
        find_own(SERVICE, "24 31 0:22 / /proc rw - proc proc rw\n")


def test_this_process_cgroup_is_read_from_the_real_proc_files() -> None:
    proc = Path("/proc/self")
    try:
        found = find_own((proc / "cgroup").read_text(), (proc / "mountinfo").read_text())
    except CgroupUnavailableError as exc:
        assert "cgroup" in str(exc)
        return
    assert (found.own / "cgroup.procs").is_file()
    assert os.getpid() in [int(pid) for pid in (found.own / "cgroup.procs").read_text().split()]


# --- why a cgroup cannot be used --------------------------------------------------------------


def test_the_root_cgroup_is_never_taken_over(tmp_path: Path) -> None:
    root = Hierarchy(tmp_path, tmp_path)
    with pytest.raises(CgroupUnavailableError, match=r"runs in the root cgroup of .*Delegate=yes"):
        check_delegated(root, os.getpid())


def test_a_missing_controller_is_named_with_what_there_is(tmp_path: Path) -> None:
    fake_cgroupfs(tmp_path, controllers="cpu pids")
    with pytest.raises(
        CgroupUnavailableError, match=r"memory controller not delegated to .* \(it has: cpu, pids\)"
    ):
        check_delegated(hierarchy(tmp_path), os.getpid())


def test_a_cgroup_shared_with_other_processes_is_left_alone(tmp_path: Path) -> None:
    own = fake_cgroupfs(tmp_path, pids=f"{os.getpid()}\n{os.getppid()}\n")
    with pytest.raises(CgroupUnavailableError, match="holds 1 other process"):
        take_over(hierarchy(tmp_path), os.getpid())
    assert not (own / "daemon").exists()  # nothing was moved


def test_the_daemon_on_this_host_says_which_mechanism_and_why(tmp_path: Path) -> None:
    """The real decision, made in a child process so this test process is never moved."""
    code = (
        "from tamma_trio.engine.cgroups import Cgroups; from tamma_trio.engine.limits import"
        " enforcement; base = Cgroups.enable(); print(base); print(enforcement())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    base, line = done.stdout.splitlines()
    if base == "None":
        assert "resource limits set before exec" in line and "; not cgroup v2: " in line
        assert line.split("; not cgroup v2: ")[1] != "no limits are set"  # a real reason
    else:
        assert line.startswith(f"cgroup v2 (runs get child cgroups of {base}")


# --- taking the cgroup over and one run's cgroup ------------------------------------------------


def test_take_over_moves_the_daemon_into_a_leaf_and_enables_the_controllers(
    tmp_path: Path,
) -> None:
    own = fake_cgroupfs(tmp_path)
    stale = own / "run-left-by-a-crash"
    stale.mkdir()
    assert take_over(hierarchy(tmp_path), os.getpid()) == own
    assert (own / "daemon" / "cgroup.procs").read_text() == str(os.getpid())
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (stale / "cgroup.kill").read_text() == "1"  # its processes were killed


def test_a_run_cgroup_gets_its_limits_and_names_what_it_hit(tmp_path: Path) -> None:
    run = RunCgroup.create(tmp_path, "abc", memory_bytes=64 << 20, processes=8)
    assert run.path == tmp_path / "run-abc"
    assert (run.path / "memory.max").read_text() == str(64 << 20)
    assert (run.path / "pids.max").read_text() == "8"

    def every() -> str | None:
        return run.hit(memory=True, processes=True, max_cpu_seconds=2.0)

    assert every() is None
    (run.path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2400000\n")
    assert every() == "cpu" and run.cpu_seconds() == 2.5
    (run.path / "pids.events").write_text("max 3\n")
    assert every() == "processes"
    (run.path / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    assert every() == "memory"
    assert run.hit(memory=False, processes=False, max_cpu_seconds=None) is None


def test_the_launcher_enters_the_run_cgroup_before_exec(tmp_path: Path) -> None:
    run = RunCgroup.create(tmp_path, "x", memory_bytes=None, processes=None)
    spec = json.dumps({"cgroup": str(run.path)})
    argv = [sys.executable, "-I", "-S", str(LAUNCHER), spec, "--", "sh", "-c", "echo $$"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert (run.path / "cgroup.procs").read_text() == done.stdout.strip()  # same pid, exec'd


def test_the_launcher_runs_nothing_when_the_cgroup_cannot_be_entered(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    spec = json.dumps({"cgroup": str(tmp_path / "gone")})
    argv = [sys.executable, "-I", "-S", str(LAUNCHER), spec, "--", "touch", str(marker)]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 125 and "cannot apply the run's limits" in done.stderr
    assert not marker.exists()


async def test_a_run_past_its_limit_in_its_cgroup_is_killed_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard reads the kernel's counters while the run lives: once memory.events says the
    OOM killer struck, the whole run goes and the reason names the limit."""
    base = tmp_path / "base"
    base.mkdir()
    monkeypatch.setattr(Cgroups, "base", base)
    guard = RunGuard(Limits(max_memory_mb=64), "the agent")
    pidfile = tmp_path / "pids"
    agent = [sys.executable, str(AGENTS / "sleep_forever.py"), str(pidfile)]

    async def oom_once_running() -> None:
        with trio.fail_after(30):
            while not pidfile.exists():  # the agent writes it once it runs
                await trio.sleep(0.01)
        [run] = base.glob("run-*")
        assert (run / "memory.max").read_text() == str(64 << 20)
        (run / "memory.events").write_text("oom 1\noom_kill 1\n")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(oom_once_running)
        outcome = await run_in_group(
            agent,
            cwd=tmp_path,
            env=dict(os.environ),
            timeout=30,
            log_path=tmp_path / "agent.log",
            log_max_bytes=10_000,
            guard=guard,
        )
    assert outcome.limit_exceeded == "memory limit of 64 MB"
    assert await group_gone(outcome.pgid)
    [run] = base.glob("run-*")  # a real cgroup would be gone; plain files keep this one
    assert (run / "cgroup.kill").read_text() == "1"
    assert isinstance(guard.start("other"), CgroupRun)


# --- in a real cgroup v2 hierarchy ---------------------------------------------------------------


@pytest.fixture
async def real_base() -> AsyncIterator[Path]:
    """A fresh child of this process's cgroup v2 directory, for runs' cgroups (never this
    process's own cgroup: the test runner stays where it is). Needs a writable cgroup2 mount,
    which means root here; this host's has no memory or pids controller, so these tests cover
    what needs none: entering a cgroup, CPU time from cpu.stat, cgroup.kill, removal."""
    proc = Path("/proc/self")
    try:
        own = find_own((proc / "cgroup").read_text(), (proc / "mountinfo").read_text()).own
    except CgroupUnavailableError as exc:
        pytest.skip(f"no cgroup v2 here: {exc}")
    if not os.access(own, os.W_OK):
        pytest.skip(f"{own} is not writable by this user")
    base = own / f"tamma-test-{os.getpid()}-{time.monotonic_ns()}"
    base.mkdir()
    yield base
    for run in base.glob("run-*"):  # what a failed test left: killed, emptied, removed
        await RunCgroup(run).remove()
    base.rmdir()


async def test_a_cpu_spinner_is_stopped_by_its_cgroups_cpu_time(
    tmp_path: Path, real_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Cgroups, "base", real_base)
    pidfile = tmp_path / "pids"
    outcome = await run_in_group(
        [sys.executable, str(AGENTS / "greedy.py"), str(pidfile), "cpu"],
        cwd=tmp_path,
        env=dict(os.environ),
        timeout=60,
        log_path=tmp_path / "agent.log",
        log_max_bytes=10_000,
        guard=RunGuard(Limits(max_cpu_seconds=1), "the agent"),
    )
    assert outcome.limit_exceeded == "CPU limit of 1 s"
    assert await group_gone(outcome.pgid)
    assert list(real_base.glob("run-*")) == []  # emptied and removed after the run


async def test_cgroup_kill_ends_a_process_that_left_the_group(
    tmp_path: Path, real_base: Path
) -> None:
    run = RunCgroup.create(real_base, "escaped", memory_bytes=None, processes=None)
    spec = json.dumps({"cgroup": str(run.path)})
    pidfile = tmp_path / "pids"
    agent = [sys.executable, str(AGENTS / "detached.py"), str(pidfile)]
    argv = [sys.executable, "-I", "-S", str(LAUNCHER), spec, "--", *agent]
    # the detached child would hold captured pipes open: nothing is captured
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _agent, child = (int(pid) for pid in pidfile.read_text().split())
    assert run.populated() and child in processes(run.path)  # another session, same cgroup
    assert await run.remove()
    assert not run.path.exists()
    with trio.fail_after(5):
        while Path(f"/proc/{child}").exists() and process_state(child) not in (None, "Z"):
            await trio.sleep(0.01)


async def test_a_daemon_alone_in_a_cgroup_without_controllers_says_so_at_start(
    tmp_path: Path, real_base: Path
) -> None:
    """A real `tamma-trio serve`, started inside a cgroup of its own that the memory and pids
    controllers were not delegated to: it serves, with resource limits, and its start-up line
    names the missing controllers."""
    service = RunCgroup.create(real_base, "service", memory_bytes=None, processes=None)
    agent = [sys.executable, str(AGENTS / "append_line.py"), "{prompt_file}"]
    config = write_config(tmp_path, agent, agent_extra={"max_memory_mb": 256})
    log = tmp_path / "serve.log"
    spec = json.dumps({"cgroup": str(service.path)})
    serve = [sys.executable, "-m", "tamma_trio", "serve", "--config", str(config)]
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-I", "-S", str(LAUNCHER), spec, "--", *serve],
            cwd=tmp_path,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        async def started() -> bool:
            assert daemon.poll() is None, log.read_text()
            return "listening health=" in log.read_text()

        await until(started, "the daemon to serve")
        assert processes(service.path) == [daemon.pid]
        line = next(text for text in log.read_text().splitlines() if "resource limits:" in text)
        assert "enforced by resource limits set before exec" in line
        assert f"not cgroup v2: memory and pids controllers not delegated to {service.path}" in line
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
