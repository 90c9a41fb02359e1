"""Resource limits on real agent processes: memory (one process and spread over several), CPU
time and a bounded fork bomb. Each run ends at its limit with a reason naming it, and no process
of its group survives. Which mechanism stops it is shown in the test names: the kernel's rlimits
(a refused allocation, SIGXCPU) or the daemon's /proc watchdog (sums over the whole run)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import trio

from tamma_trio.engine.agent import AgentRequest, AgentRunner
from tamma_trio.engine.limits import (
    Limits,
    RunGuard,
    SessionSampler,
    Usage,
    breach_from_exit,
    breached,
    enforcement,
)
from tamma_trio.engine.process import run_in_group
from tamma_trio.engine.workflow_options import parse_options
from tamma_trio.errors import ConfigError, EngineError
from tamma_trio.models import TaskStatus, TaskType
from tests.test_e2e_workflow import (
    add_issue,
    all_tasks,
    finished,
    forge_rows,
    serving,
    until,
    write_config,
)
from tests.workflow_helpers import AGENTS, group_gone

GREEDY = AGENTS / "greedy.py"
LOW = ("--label", "tamma", "--label", "complexity:low")


def request(tmp_path: Path) -> AgentRequest:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return AgentRequest("implement", "Title: x\n", workdir, tmp_path / "task", 3, "x", "tamma/3-x")


async def run_greedy(tmp_path: Path, kind: str, limits: Limits) -> tuple[EngineError, int, float]:
    """Run greedy.py under ``limits``; (the error, its process group, seconds it ran)."""
    pidfile = tmp_path / "pids"
    runner = AgentRunner(
        [sys.executable, str(GREEDY), str(pidfile), kind],
        timeout=60,
        log_max_bytes=100_000,
        kill_grace=1,
        guard=RunGuard(limits, "the agent"),
    )
    started = trio.current_time()
    with pytest.raises(EngineError) as caught:
        await runner.run(request(tmp_path))
    _pid, pgid = (int(part) for part in pidfile.read_text().split())
    return caught.value, pgid, trio.current_time() - started


def assert_limit_failure(error: EngineError, reason: str) -> None:
    assert error.code == "limit_exceeded" and not error.retryable
    assert str(error) == f"the agent exceeded its {reason}; its process group was killed"


async def test_memory_refused_by_the_address_space_limit(tmp_path: Path) -> None:
    error, pgid, _ = await run_greedy(tmp_path, "memory:1024", Limits(max_memory_mb=128))
    assert_limit_failure(error, "memory limit of 128 MB")
    assert "MemoryError" in error.context["output_tail"]
    assert await group_gone(pgid)


async def test_memory_spread_over_processes_is_caught_by_the_watchdog(tmp_path: Path) -> None:
    # Each child holds 60 MB, under the per-process address-space cap of 160 MB; the run's
    # sum (3 x 60 MB) is over it, which only the watchdog sees.
    error, pgid, elapsed = await run_greedy(tmp_path, "spread:3x60", Limits(max_memory_mb=160))
    assert_limit_failure(error, "memory limit of 160 MB")
    assert "MemoryError" not in error.context["output_tail"]
    assert await group_gone(pgid)
    assert elapsed < 60  # it did not wait for the timeout


async def test_cpu_spinner_stops_at_its_cpu_limit(tmp_path: Path) -> None:
    error, pgid, elapsed = await run_greedy(tmp_path, "cpu", Limits(max_cpu_seconds=1))
    assert_limit_failure(error, "CPU limit of 1 s")
    assert await group_gone(pgid)
    assert elapsed < 30


async def test_fork_bomb_stops_at_its_process_limit(tmp_path: Path) -> None:
    # depth 5: at most 63 processes even if no limit held, so the host is never at risk.
    error, pgid, elapsed = await run_greedy(tmp_path, "fork:5", Limits(max_processes=8))
    assert_limit_failure(error, "process limit of 8")
    assert await group_gone(pgid)
    assert elapsed < 30


async def test_a_run_within_its_limits_is_untouched(tmp_path: Path) -> None:
    log = tmp_path / "ok.log"
    guard = RunGuard(Limits(max_memory_mb=256, max_cpu_seconds=10, max_processes=8), "the tests")
    outcome = await run_in_group(
        [sys.executable, "-c", "print(sum(range(1000)))"],
        cwd=tmp_path,
        env=dict(os.environ),
        timeout=30,
        log_path=log,
        log_max_bytes=10_000,
        guard=guard,
    )
    assert outcome.exit_code == 0 and outcome.limit_exceeded is None
    assert outcome.stdout.strip() == b"499500"


async def test_tests_runner_reports_in_the_plural(tmp_path: Path) -> None:
    guard = RunGuard(Limits(max_cpu_seconds=1), "the tests")
    outcome = await run_in_group(
        [sys.executable, str(GREEDY), str(tmp_path / "pids"), "cpu"],
        cwd=tmp_path,
        env=dict(os.environ),
        timeout=30,
        log_path=tmp_path / "tests.log",
        log_max_bytes=10_000,
        guard=guard,
    )
    assert outcome.limit_exceeded == "CPU limit of 1 s"
    assert guard.message(outcome.limit_exceeded) == (
        "the tests exceeded their CPU limit of 1 s; their process group was killed"
    )


# --- the pure parts -----------------------------------------------------------------------------


def test_breached_names_the_first_limit_crossed() -> None:
    limits = Limits(max_memory_mb=100, max_cpu_seconds=5, max_processes=4)
    assert breached(limits, Usage(4, 100 * 1024 * 1024, 4.9)) is None
    assert breached(limits, Usage(5, 0, 0)) == "process limit of 4"
    assert breached(limits, Usage(1, 0, 5.0)) == "CPU limit of 5 s"
    assert breached(limits, Usage(1, 100 * 1024 * 1024 + 1, 0)) == "memory limit of 100 MB"
    assert breached(Limits(), Usage(10_000, 1 << 40, 1e6)) is None


def test_breach_from_exit_reads_sigxcpu_and_refused_allocations() -> None:
    limits = Limits(max_memory_mb=100, max_cpu_seconds=5)
    assert breach_from_exit(limits, -24, "") == "CPU limit of 5 s"
    assert breach_from_exit(limits, 1, "Traceback...\nMemoryError\n") == "memory limit of 100 MB"
    assert breach_from_exit(limits, 0, "MemoryError") is None  # it coped and succeeded
    assert breach_from_exit(limits, 1, "AssertionError") is None
    assert breach_from_exit(Limits(), 1, "MemoryError") is None  # no limit set: not ours
    forks = Limits(max_processes=8)
    refused = "BlockingIOError: [Errno 11] Resource temporarily unavailable"
    assert breach_from_exit(forks, 1, refused) == "process limit of 8"
    assert breach_from_exit(forks, 0, refused) is None


def test_sampler_sees_this_session() -> None:
    sampler = SessionSampler()
    usage = sampler.sample(os.getsid(0))
    assert usage.processes >= 1 and usage.rss_bytes > 0 and usage.cpu_seconds > 0


def test_enforcement_names_the_mechanism() -> None:
    text = enforcement()
    assert text.startswith("resource limits set before exec")
    assert "watchdog" in text


# --- in the daemon ------------------------------------------------------------------------------


async def test_daemon_fails_and_escalates_the_greedy_task_and_keeps_serving(
    tmp_path: Path,
) -> None:
    pidfile = str(tmp_path / "agent-{issue_number}.pids")
    agent = [sys.executable, str(GREEDY), pidfile, "title", "{prompt_file}"]
    config = write_config(tmp_path, agent, max_retries=3, agent_extra={"max_memory_mb": 256})
    async with serving(tmp_path, config) as daemon:
        hog = await add_issue(config, "Hog memory", "--label", "tamma", "--label", "complexity:low")
        fine = await add_issue(
            config, "Add a line", "--label", "tamma", "--label", "complexity:low"
        )
        merged = await until(finished(tmp_path, TaskType.PR_REVIEW_REQUESTED), "the other merge")
        tasks = {
            t.payload["issue"]["number"]: t
            for t in await all_tasks(tmp_path)
            if t.type is TaskType.ISSUE_ASSIGNED
        }
    log = daemon.log.read_text()
    assert "resource limits: agent memory 256 MB; tests none; enforced by" in log
    mechanism = re.search(r"enforced by (.*)", log)
    assert mechanism is not None  # cgroups, or resource limits and why not cgroups
    assert "cgroup v2 (" in mechanism[1] or re.search("; not cgroup v2: .+", mechanism[1])
    failed = tasks[hog]
    assert failed.status is TaskStatus.FAILED and failed.attempts == 1  # not retried
    assert failed.error == (
        "the agent exceeded its memory limit of 256 MB; its process group was killed"
    )
    issue, comments, (pull,) = forge_rows(tmp_path, hog)
    assert "needs-human-review" in issue.labels
    assert any("exceeded its memory limit of 256 MB" in body for body in comments), comments
    assert pull.title == f"Add a line (#{fine})" and pull.state == "merged"
    _pid, pgid = (int(p) for p in Path(pidfile.format(issue_number=hog)).read_text().split())
    assert await group_gone(pgid)
    assert tasks[fine].status is TaskStatus.COMPLETED and merged.status is TaskStatus.COMPLETED


def test_bad_limits_are_config_errors_naming_the_key() -> None:
    options = {
        "agent": {"max_memory_mb": 8, "max_processes": 0},
        "tests": {"max_cpu_seconds": -1},
    }
    with pytest.raises(ConfigError) as caught:
        parse_options(options)
    keys = sorted(problem[0] for problem in caught.value.problems)
    assert keys == [
        "engine.agent.max_memory_mb",
        "engine.agent.max_processes",
        "engine.tests.max_cpu_seconds",
    ]


def test_limit_options_become_limits() -> None:
    settings = parse_options({"agent": {"max_memory_mb": 2048, "max_cpu_seconds": 600}})
    assert settings.agent.limits() == Limits(max_memory_mb=2048, max_cpu_seconds=600)
    assert not settings.tests.limits()
