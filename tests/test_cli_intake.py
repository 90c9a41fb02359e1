"""`issues comment`, `tasks approve` and `deliveries list` through the real CLI entry point on a
`forge init` project: commands in local comments act as forge deliveries, and are logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from tamma_trio.cli import main
from tamma_trio.models import TaskStatus
from tamma_trio.store.sqlite import SqliteStore


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TAMMA_CONFIG", raising=False)
    assert main(["forge", "init"]) == 0
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tasks(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    code, out, _ = run(capsys, "tasks", "list", "--json")
    assert code == 0
    return list(json.loads(out))


def escalate(project: Path, task_id: int) -> None:
    """Finish task ``task_id`` as the handler does when its plan needs a human."""

    async def complete() -> None:
        store = SqliteStore(project / "tamma.db")
        async with store:
            [claimed] = await store.claim(1)
            assert claimed.id == task_id
            result = {"action": "escalated_for_approval", "stage": "plan", "reasons": ["x"]}
            await store.complete(task_id, claimed.lease_token or "", result)

    trio.run(complete)


def test_a_comment_without_a_command_is_logged_as_ignored(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "issues", "add", "Fix it")[0] == 0
    code, out, _ = run(capsys, "issues", "comment", "1", "thanks!", "--author", "alice")
    assert code == 0 and "ignored: the comment holds no command" in out
    code, out, _ = run(capsys, "deliveries", "list")
    assert code == 0 and "local comment-1  comment/created  local/demo by alice  ignored" in out
    code, out, _ = run(capsys, "deliveries", "list", "--json")
    [delivery] = json.loads(out)
    assert delivery["outcome"] == "ignored" and delivery["forge"] == "local"


def test_approve_from_a_comment_and_from_the_cli(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "issues", "add", "Risky", "--label", "tamma")[0] == 0
    [escalated] = tasks(capsys)
    escalate(project, int(str(escalated["id"])))
    code, out, _ = run(capsys, "issues", "comment", "1", "/tamma approve", "--author", "tamma")
    assert code == 0 and "refused" in out and "the bot never commands itself" in out
    code, out, _ = run(capsys, "issues", "comment", "1", "/tamma approve", "--author", "alice")
    assert code == 0 and "queued tasks" in out, out
    approved = [
        t for t in tasks(capsys) if isinstance(t["payload"], dict) and "approval" in t["payload"]
    ]
    assert [t["payload"]["approval"] for t in approved] == [  # type: ignore[index]
        {"by": "alice", "of_task": escalated["id"]}
    ]
    code, out, _ = run(capsys, "tasks", "approve", str(escalated["id"]), "--as", "bob")
    assert code == 0 and f"task {escalated['id']} approved by bob" in out
    assert len(tasks(capsys)) == 3
    again = run(capsys, "tasks", "approve", str(escalated["id"]), "--as", "bob")
    assert again[0] == 0 and len(tasks(capsys)) == 3  # keyed: approving twice adds nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tasks", "approve", "1"], "task 1 is not waiting for approval (queued)"),
        (["tasks", "approve", "1", "--as", "tamma"], "the bot can never approve"),
        (["tasks", "approve", "99"], "no task with id 99"),
        (["issues", "comment", "9", "/tamma start"], "local/demo has no issue or pull request #9"),
        (["issues", "comment", "0", "/tamma start"], "must be a whole number"),
    ],
)
def test_refusals_are_one_line_and_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run(capsys, "issues", "add", "Fix it", "--label", "tamma")[0] == 0
    code, _, err = run(capsys, *args)
    assert code == 2 and message in err and err.count("\n") == 1
    assert len(tasks(capsys)) == 1


def test_cancel_and_retry_from_comments(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "issues", "add", "Fix it", "--label", "tamma")[0] == 0
    code, out, _ = run(capsys, "issues", "comment", "1", "/tamma cancel", "--author", "alice")
    assert code == 0 and "cancelled tasks 1" in out
    assert [t["status"] for t in tasks(capsys)] == [TaskStatus.CANCELLED.value]
    code, out, _ = run(capsys, "issues", "comment", "1", "/tamma retry", "--author", "alice")
    assert code == 0 and "retried tasks 1" in out
    assert [t["status"] for t in tasks(capsys)] == [TaskStatus.QUEUED.value]
