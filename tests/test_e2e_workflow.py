"""End to end: a real `tamma-trio serve` process, the local forge over a bare repository in
tmp_path, real agent scripts and a real test command. Issues go in through the real CLI; every
wait is a bounded poll on a condition."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from tamma_trio.engine.forge.local_db import ForgeDb
from tamma_trio.engine.forge.seed import init_origin
from tamma_trio.models import Task, TaskStatus, TaskType
from tamma_trio.store.sqlite import SqliteStore
from tests.workflow_helpers import AGENTS, EXAMPLE_AGENT, UNITTEST, git_out, group_gone

T = TypeVar("T")
REPO = "local/demo"
BOT = "tamma"
CLI = [sys.executable, "-m", "tamma_trio"]


def toml_value(value: Any) -> str:
    return json.dumps(value)  # strings, numbers and string arrays are the same in TOML


def write_config(
    tmp_path: Path,
    agent: list[str],
    *,
    tests: list[str] | None = None,
    max_retries: int = 3,
    shutdown_timeout: float = 10,
    agent_timeout: float = 30,
    agent_extra: dict[str, Any] | None = None,
) -> Path:
    init_origin(tmp_path / "origin.git")
    sections: dict[str, dict[str, Any]] = {
        "service": {
            "poll_interval": 0.2,
            "retry_delay": 0.1,
            "max_retry_delay": 1,
            "max_retries": max_retries,
            "shutdown_timeout": shutdown_timeout,
            "bot_name": BOT,
        },
        "service.queue.sqlite": {"path": str(tmp_path / "tamma.db"), "synchronous": "NORMAL"},
        "service.health_check": {"port": 0},
        "service.metrics": {"port": 0},
        "engine": {"name": "workflow", "workspace_dir": str(tmp_path / "workspaces")},
        "engine.forge": {"origin": str(tmp_path / "origin.git"), "repository": REPO},
        "engine.agent": {"command": agent, "timeout": agent_timeout, "kill_grace": 0.5}
        | (agent_extra or {}),
        "engine.tests": {"command": tests or list(UNITTEST), "timeout": 60},
    }
    text = "".join(
        f"[{name}]\n" + "".join(f"{key} = {toml_value(v)}\n" for key, v in table.items()) + "\n"
        for name, table in sections.items()
    )
    path = tmp_path / "tamma.toml"
    path.write_text(text)
    return path


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TAMMA_")}


async def until(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30) -> T:
    """Poll ``check`` until it returns something truthy, at most ``timeout`` seconds."""
    with trio.move_on_after(timeout):
        while True:
            result = await check()
            if result:
                return result
            await trio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Daemon:
    def __init__(self, tmp_path: Path, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.cwd = tmp_path
        self.log = tmp_path / "serve-0.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {**clean_env(), **(env or {})}

    async def start(self) -> None:
        self.log = self.cwd / f"serve-{len(list(self.cwd.glob('serve-*.log'))) + 1}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*CLI, "serve", "--config", str(self.config)],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        await until(self._listening, f"the daemon to listen ({self.log})")

    async def _listening(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.log.read_text()
        return "listening health=" in self.log.read_text()

    async def stop(self) -> int:
        """SIGTERM and the exit code (bounded; killed and failed if it does not exit)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        process = self.process

        async def exited() -> int | None:
            code = process.poll()
            return None if code is None else code + 1000  # 0 must count as "exited"

        try:
            return await until(exited, "the daemon to exit after SIGTERM", timeout=30) - 1000
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@asynccontextmanager
async def serving(tmp_path: Path, config: Path) -> AsyncIterator[Daemon]:
    daemon = Daemon(tmp_path, config)
    await daemon.start()
    try:
        yield daemon
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            assert await daemon.stop() == 0, daemon.log.read_text()


async def add_issue(config: Path, title: str, *args: str) -> int:
    done = await trio.run_process(
        [*CLI, "issues", "add", title, "--config", str(config), *args],
        capture_stdout=True,
        capture_stderr=True,
        env=clean_env(),
    )
    return int(done.stdout.decode().strip())


async def all_tasks(tmp_path: Path) -> list[Task]:
    store = SqliteStore(tmp_path / "tamma.db")
    async with store:
        return await store.list_tasks(limit=100)


def finished(tmp_path: Path, task_type: TaskType) -> Callable[[], Awaitable[Task | None]]:
    """A check: the task of ``task_type`` once it has ended (completed or failed)."""

    async def check() -> Task | None:
        for task in await all_tasks(tmp_path):
            if task.type is task_type and task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
                return task
        return None

    return check


def forge_rows(tmp_path: Path, number: int) -> tuple[Any, list[str], list[Any]]:
    """(issue row, comment bodies, pull request rows)."""
    db = ForgeDb(tmp_path / "tamma.forge.db")
    try:
        return (
            db.item(REPO, number),
            [c.body for c in db.comments(REPO, number)],
            db.items(REPO, "pull"),
        )
    finally:
        db.close()


def assert_escalated(tmp_path: Path, number: int, reason: str) -> None:
    issue, comments, pulls = forge_rows(tmp_path, number)
    assert pulls == []
    assert "needs-human-review" in issue.labels and "tamma:in-progress" not in issue.labels
    assert any("needs a human" in body and reason in body for body in comments), comments


def issue_dirs(tmp_path: Path, number: int) -> list[Path]:
    """The issue's worktree and log directories that exist, sorted."""
    root = tmp_path / "workspaces" / "local__demo"
    return sorted(
        p for p in (root / "worktrees" / str(number), root / "tasks" / str(number)) if p.exists()
    )


def origin_branches(tmp_path: Path) -> list[str]:
    return git_out(tmp_path / "origin.git", "for-each-ref", "--format=%(refname:short)").split()


# --- the happy path ---------------------------------------------------------------------------


async def test_labelled_issue_becomes_a_merge_commit_on_main(tmp_path: Path) -> None:
    config = write_config(tmp_path, [sys.executable, str(EXAMPLE_AGENT), "{prompt_file}"])
    async with serving(tmp_path, config):
        number = await add_issue(
            config, "Add a farewell", "--label", "tamma", "--label", "complexity:low"
        )
        review = await until(finished(tmp_path, TaskType.PR_REVIEW_REQUESTED), "the merge")
    issue_task = await finished(tmp_path, TaskType.ISSUE_ASSIGNED)()
    assert issue_task is not None and issue_task.result is not None
    assert issue_task.result["action"] == "auto_approved"
    assert review.status is TaskStatus.COMPLETED and review.result is not None
    assert review.result["action"] == "merged"

    origin = tmp_path / "origin.git"
    issue, comments, pulls = forge_rows(tmp_path, number)
    (pull,) = pulls
    merge_parents = git_out(origin, "log", "-1", "--format=%P", "main").split()
    assert len(merge_parents) == 2 and git_out(origin, "rev-parse", "main") == review.result["sha"]
    assert git_out(origin, "log", "-1", "--format=%s", merge_parents[1]) == (
        f"Add a farewell (#{number})"
    )
    assert f"- #{number}: Add a farewell" in git_out(origin, "show", "main:CHANGELOG.md")
    assert pull.state == "merged" and issue.state == "closed"
    assert origin_branches(tmp_path) == ["main"]  # the branch was deleted after the merge
    assert len(comments) == 3  # claim, pull request opened, merged
    assert issue_dirs(tmp_path, number) == []  # a success leaves no worktree or logs behind


# --- failures ---------------------------------------------------------------------------------


async def test_agent_timeout_kills_its_process_group_and_escalates(tmp_path: Path) -> None:
    pidfile = tmp_path / "agent.pids"
    agent = [sys.executable, str(AGENTS / "sleep_forever.py"), str(pidfile), "--ignore-term"]
    config = write_config(tmp_path, agent, max_retries=0, agent_timeout=1)
    async with serving(tmp_path, config):
        number = await add_issue(config, "Slow", "--label", "tamma", "--label", "complexity:low")
        task = await until(finished(tmp_path, TaskType.ISSUE_ASSIGNED), "the timeout")
    assert task.status is TaskStatus.FAILED and task.error is not None
    assert "timed out" in task.error
    _leader, _child, pgid = (int(p) for p in pidfile.read_text().split())
    assert await group_gone(pgid)
    assert_escalated(tmp_path, number, "timed out")


async def test_agent_that_changes_nothing_escalates(tmp_path: Path) -> None:
    config = write_config(tmp_path, [sys.executable, str(AGENTS / "no_change.py"), "{prompt_file}"])
    async with serving(tmp_path, config):
        number = await add_issue(config, "Noop", "--label", "tamma", "--label", "complexity:low")
        task = await until(finished(tmp_path, TaskType.ISSUE_ASSIGNED), "the failure")
    assert task.status is TaskStatus.FAILED and task.attempts == 1  # not retried
    assert task.error is not None and "agent produced no changes" in task.error
    assert_escalated(tmp_path, number, "agent produced no changes")
    assert origin_branches(tmp_path) == ["main"]


async def test_failing_tests_open_no_pull_request_and_escalate(tmp_path: Path) -> None:
    config = write_config(tmp_path, [sys.executable, str(AGENTS / "break_tests.py")])
    async with serving(tmp_path, config):
        number = await add_issue(config, "Break", "--label", "tamma", "--label", "complexity:low")
        task = await until(finished(tmp_path, TaskType.ISSUE_ASSIGNED), "the failure")
    assert task.status is TaskStatus.FAILED and task.error is not None
    assert "tests failed" in task.error
    assert_escalated(tmp_path, number, "tests failed")
    assert origin_branches(tmp_path) == ["main"]  # nothing was pushed
    assert [t.type for t in await all_tasks(tmp_path)] == [TaskType.ISSUE_ASSIGNED]
    kept = issue_dirs(tmp_path, number)  # for the human who looks into it
    assert [path.parent.name for path in kept] == ["tasks", "worktrees"]
    assert (kept[0] / "tests.log").is_file() and (kept[1] / "greeting.py").is_file()
    pruned = await trio.run_process(
        [*CLI, "tasks", "prune", "--older-than", "0s", "--config", str(config)],
        capture_stdout=True,
        env=clean_env(),
    )
    assert "removed the kept worktrees and logs of 1 issue(s)" in pruned.stdout.decode()
    assert issue_dirs(tmp_path, number) == []
    clone = tmp_path / "workspaces" / "local__demo" / "repo"
    assert f"worktrees/{number}" not in git_out(clone, "worktree", "list")


async def test_plan_touching_package_json_is_escalated_for_approval_without_a_branch(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, [sys.executable, str(EXAMPLE_AGENT), "{prompt_file}"])
    async with serving(tmp_path, config):
        number = await add_issue(
            config,
            "Bump the dependency",
            "--body",
            "Raise the version in `package.json`.",
            "--label",
            "tamma",
            "--label",
            "complexity:low",
        )
        task = await until(finished(tmp_path, TaskType.ISSUE_ASSIGNED), "the escalation")
    assert task.status is TaskStatus.COMPLETED and task.result is not None
    assert task.result["action"] == "escalated_for_approval"
    assert any("package.json" in reason for reason in task.result["reasons"])
    assert_escalated(tmp_path, number, "package.json")
    assert origin_branches(tmp_path) == ["main"]
    clone = tmp_path / "workspaces" / "local__demo" / "repo"
    assert git_out(clone, "branch", "--list", "tamma/*") == ""  # no branch, not even locally


# --- interruption -----------------------------------------------------------------------------


async def test_sigterm_between_implement_and_tests_resumes_and_opens_one_pull_request(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "tests-started"
    tests = [sys.executable, str(AGENTS / "slow_tests.py"), str(marker)]
    agent = [sys.executable, str(AGENTS / "append_line.py"), "{prompt_file}"]
    config = write_config(tmp_path, agent, tests=tests, shutdown_timeout=1)
    daemon = Daemon(tmp_path, config)
    await daemon.start()
    try:
        number = await add_issue(
            config, "Resume me", "--label", "tamma", "--label", "complexity:low"
        )

        async def tests_running() -> bool:
            return marker.exists() and bool(marker.read_text().strip())

        await until(tests_running, "the first test run")
        assert await daemon.stop() == 0, daemon.log.read_text()
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.process.kill()
    test_pid, test_pgid = (int(p) for p in marker.read_text().split())
    assert await group_gone(test_pgid)  # the hanging test run was killed with the drain
    (interrupted,) = await all_tasks(tmp_path)
    assert interrupted.status is TaskStatus.QUEUED and "implement_code" in interrupted.progress
    assert "run_tests" not in interrupted.progress

    async with serving(tmp_path, config):
        await until(finished(tmp_path, TaskType.PR_REVIEW_REQUESTED), "the merge after restart")
    issue, comments, pulls = forge_rows(tmp_path, number)
    assert len(pulls) == 1 and pulls[0].state == "merged"
    assert sum("Opened pull request" in body for body in comments) == 1
    assert sum("is working on this issue" in body for body in comments) == 1
    changes = git_out(tmp_path / "origin.git", "show", "main:CHANGES.txt")
    assert changes == f"#{number}: Resume me"  # the agent ran once, not again after the restart
    assert test_pid > 0 and issue.state == "closed"
