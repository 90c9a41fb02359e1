"""cgroup v2 enforcement: finding the daemon's cgroup, the reasons it cannot be used, and the
file protocol of a run's cgroup.

This test machine's cgroup v2 hierarchy has no memory or pids controller (they are bound to
cgroup v1), so the kernel's enforcement itself cannot run here. The protocol is therefore
checked against a directory tree in tmp_path laid out like cgroupfs (the files the daemon
writes and the counters the kernel would keep); the real launcher, real processes and real
/proc/self files are used wherever the test does not need the kernel's controllers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    take_over,
)
from tamma_trio.engine.limits import LAUNCHER, CgroupRun, Limits, RunGuard
from tamma_trio.engine.process import run_in_group
from tests.workflow_helpers import AGENTS, group_gone

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
