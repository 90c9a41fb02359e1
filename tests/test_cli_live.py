"""`tasks list` (80 columns, running steps, more rows, --all, --watch), `tasks show` (steps,
approvals, logs, local times) and `tasks logs`, on real SQLite files in tmp_path."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from rich.console import Console

from tamma_trio.cli import main
from tamma_trio.cli.live import Listing, list_live
from tamma_trio.cli.render_live import task_table
from tamma_trio.cli.task_rows import plain_table
from tamma_trio.models import NewTask
from tamma_trio.store.sqlite import SqliteStore
from tamma_trio.timeline import step_detail
from tests.test_lifecycle import DEADLINE

REPO = "local/demo"


def issue(number: int) -> NewTask:
    return NewTask.build("issue_assigned", {"repository": REPO, "issue": {"number": number}})


def seed(path: Path, queued: int = 3) -> int:
    """``queued`` queued tasks, then one running task in step implement_code after an approved
    plan; returns the running task's id."""

    async def fill() -> int:
        async with SqliteStore(path, inline=True) as store:
            return await fill_store(store)

    async def fill_store(store: SqliteStore) -> int:
        running, _ = await store.add(issue(1))
        [claimed] = await store.claim(1)
        approval = {
            "stage": "plan",
            "approved": True,
            "reasons": [],
            "checks": [{"rule": "complexity", "passed": True, "detail": "low is allowed"}],
        }
        await store.record_event(claimed.id, "step", step_detail("generate_plan", 1))
        await store.record_event(claimed.id, "approval", approval)
        await store.record_event(claimed.id, "step", step_detail("implement_code", 1))
        await store.add_many([issue(n) for n in range(2, 2 + queued)])
        return running.id

    return trio.run(fill)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A quickstart-like directory: tamma.toml for the workflow engine, the database beside it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tamma.toml").write_text(
        '[engine]\nname = "workflow"\nworkspace_dir = "./workspaces"\n'
        f'[engine.forge]\nrepository = "{REPO}"\n'
    )
    yield tmp_path


def test_list_shows_the_running_step_and_fits_80_columns(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = seed(project / "tamma.db")
    assert main(["tasks", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "type", "status", "step", "time", "subject", "outcome"]
    assert all(len(line) <= 80 for line in lines)
    [row] = [line for line in lines if line.startswith(f"{running} ")]
    assert row.split()[1:4] == ["issue", "running", "implement_code"]
    assert row.split()[4].endswith("s")  # elapsed in the step
    assert len(lines) == 5 and "more exist" not in lines[-1]


def test_list_says_when_more_rows_exist_and_all_shows_them(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(project / "tamma.db", queued=60)
    assert main(["tasks", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "showing the newest 50; more exist (--limit N or --all)"
    assert len(lines) == 52
    assert main(["tasks", "list", "--all", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 61
    assert main(["tasks", "list", "--limit", "61"]) == 0
    assert "more exist" not in capsys.readouterr().out


def test_watch_redraws_until_ctrl_c(project: Path) -> None:
    seed(project / "tamma.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMMA_")}
    env["TAMMA_CONFIG"] = str(project / "tamma.toml")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "tamma_trio", "tasks", "list", "--watch", "--interval", "0.2"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None
    try:
        headers = 0
        end = time.monotonic() + DEADLINE
        while headers < 2 and time.monotonic() < end:
            line = watcher.stdout.readline()
            headers += line.startswith("tasks at ") and "every 0.2 s (Ctrl-C stops)" in line
        assert headers == 2
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=DEADLINE) == 0
    finally:
        watcher.kill()
        watcher.wait()
        watcher.stdout.close()


def test_show_renders_steps_approvals_and_log_paths_in_local_time(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    running = seed(project / "tamma.db")
    logs = project / "workspaces" / "local__demo" / "tasks" / "1"
    logs.mkdir(parents=True)
    (logs / "agent-implement.log").write_text("did things\n")
    (logs / "tests.log").write_text("OK\n")
    try:
        assert main(["tasks", "show", str(running)]) == 0
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    out = capsys.readouterr().out
    assert " JST" in out and " UTC" not in out
    steps = [line for line in out.splitlines() if "generate_plan" in line or "implement" in line]
    assert any("generate_plan" in line and "done" in line for line in steps)
    assert any("implement_code" in line and "running" in line for line in steps)
    assert "  plan: auto-approved" in out
    assert "    ok  complexity: low is allowed" in out
    assert f"  {logs / 'agent-implement.log'} (11 bytes)" in out
    assert f"  {logs / 'tests.log'} (3 bytes)" in out


def test_logs_prints_each_log_with_its_path(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = seed(project / "tamma.db")
    logs = project / "workspaces" / "local__demo" / "tasks" / "1"
    logs.mkdir(parents=True)
    (logs / "tests.log").write_text("one\ntwo\nthree\n")
    assert main(["tasks", "logs", str(running), "--tail", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"==> {logs / 'tests.log'} <==", "two", "three"]


def test_logs_of_a_task_without_logs_says_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = seed(project / "tamma.db")
    assert main(["tasks", "logs", str(running)]) == 1
    assert f"task {running} has no logs" in capsys.readouterr().err


def test_the_terminal_table_and_the_plain_one_show_the_same_cells(project: Path) -> None:
    """A pipe gets plain text, a terminal gets rich: the same columns and cells, 80 wide, a
    long outcome cut with an ellipsis in both."""
    seed(project / "tamma.db")

    async def listing() -> Listing:
        store = SqliteStore(project / "tamma.db", inline=True)
        async with store:
            await store.add(issue(90))
            [claimed] = await store.claim(1)
            assert claimed.lease_token is not None
            await store.fail(claimed.id, claimed.lease_token, "the tests failed: " + "x" * 80)
            return await list_live(store, None, None, 50)

    shown = trio.run(listing)
    now = dt.datetime.now(dt.UTC)
    plain = plain_table(shown, now).splitlines()
    console = Console(file=io.StringIO(), width=80, highlight=False, color_system=None)
    console.print(task_table(shown, now))
    assert isinstance(console.file, io.StringIO)
    fancy = console.file.getvalue().splitlines()
    assert [line.split() for line in plain] == [line.split() for line in fancy]
    assert all(len(line) <= 80 for line in plain + fancy)
    [failed] = [line for line in plain if " failed " in line]
    assert failed.endswith("the tests failed…") and len(failed) == 80
