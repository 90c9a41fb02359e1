"""`tamma-trio tasks ...` against a real SQLite file, through main(argv) as a user runs it."""

import json
from pathlib import Path
from typing import Any

import pytest

from tamma_trio.cli import main

ISSUE = json.dumps({"repository": "acme/widgets", "issue": {"number": 42, "title": "Fix it"}})


class Cli:
    """Runs the CLI with a config pointing at a SQLite file in tmp_path."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = tmp_path / "tamma.toml"
        self.database = tmp_path / "tasks.db"
        self.config.write_text(f'[service.queue.sqlite]\npath = "{self.database}"\n')
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main([*args, "--config", str(self.config)])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, err
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def refuses(self, *args: str) -> str:
        code, _, err = self(*args)
        assert code == 2
        assert err.startswith("error: ") or err.startswith("Usage:") or "Error:" in err
        return err


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path, capsys)


def test_add_list_show_cancel_retry_stats(cli: Cli) -> None:
    task_id = int(
        cli.ok("tasks", "add", "issue_assigned", "--payload", ISSUE, "--priority", "high")
    )
    row = cli.ok("tasks", "list").splitlines()[1]  # the table shows issue_assigned as "issue"
    assert row.split()[:3] == [str(task_id), "issue", "queued"]
    [listed] = cli.json("tasks", "list")
    assert listed["id"] == task_id and listed["status"] == "queued" and listed["priority"] == 2
    assert set(listed) == {
        "id", "type", "priority", "payload", "status", "attempts", "max_retries", "not_before",
        "created_at", "started_at", "finished_at", "error", "result",
    }  # fmt: skip
    assert cli.ok("tasks", "cancel", str(task_id)).strip() == f"task {task_id} cancelled"
    assert cli.ok("tasks", "retry", str(task_id)).strip() == f"task {task_id} queued"
    shown = cli.json("tasks", "show", str(task_id))
    assert isinstance(shown, dict)
    assert shown["events"][0]["kind"] == "enqueued"
    assert shown["events"][0]["actor"] == "cli"
    assert {event["status"] for event in shown["events"]} >= {"queued", "cancelled"}
    stats = cli.json("tasks", "stats")
    assert stats == {
        "by_status": {"queued": 1, "in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0},
        "queue_depth": 1,
        "oldest_queued_age": stats["oldest_queued_age"],
    }
    assert "queue depth: 1" in cli.ok("tasks", "stats")
    assert "enqueued" in cli.ok("tasks", "show", str(task_id))


def test_payload_from_file_and_idempotency_key(cli: Cli, tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text(ISSUE)
    first = cli.ok("tasks", "add", "issue_assigned", "--payload", f"@{payload}", "--key", "d-1")
    second = cli.ok("tasks", "add", "issue_assigned", "--payload", ISSUE, "--key", "d-1")
    assert first == second
    assert len(cli.json("tasks", "list")) == 1


def test_list_filters(cli: Cli) -> None:
    pr = json.dumps({"repository": "acme/widgets", "pull_request": {"number": 7}})
    cli.ok("tasks", "add", "issue_assigned", "--payload", ISSUE)
    cli.ok("tasks", "add", "pr_review_requested", "--payload", pr, "--priority", "3")
    assert [t["type"] for t in cli.json("tasks", "list", "--type", "pr_review_requested")] == [
        "pr_review_requested"
    ]
    assert cli.json("tasks", "list", "--status", "failed") == []
    assert len(cli.json("tasks", "list", "--limit", "1")) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tasks", "add", "deploy", "--payload", ISSUE], "unknown task type 'deploy'"),
        (
            ["tasks", "add", "issue_assigned", "--payload", "{not json"],
            "--payload is not valid JSON",
        ),
        (
            ["tasks", "add", "issue_assigned", "--payload", "@/nonexistent.json"],
            "cannot read payload",
        ),
        (
            ["tasks", "add", "issue_assigned", "--payload", '{"repository": "x/y"}'],
            "issue: Field required",
        ),
        (
            ["tasks", "add", "issue_assigned", "--payload", ISSUE, "--priority", "urgent"],
            "'urgent' is not 0-3",
        ),
        (
            ["tasks", "add", "issue_assigned", "--payload", ISSUE, "--max-retries", "11"],
            "--max-retries",
        ),
        (["tasks", "list", "--status", "done"], "'done' is not one of"),
        (["tasks", "list", "--type", "deploy"], "unknown task type"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_stores_nothing(
    cli: Cli, args: list[str], message: str
) -> None:
    assert message in cli.refuses(*args)
    assert not cli.database.exists()


@pytest.mark.parametrize("verb", ["show", "cancel", "retry"])
def test_unknown_id_is_refused(cli: Cli, verb: str) -> None:
    cli.ok("tasks", "add", "issue_assigned", "--payload", ISSUE)
    assert cli.refuses("tasks", verb, "999").strip() == "error: no task with id 999"


def test_impossible_transitions_are_refused(cli: Cli) -> None:
    task_id = cli.ok("tasks", "add", "issue_assigned", "--payload", ISSUE).strip()
    assert "only a failed or cancelled task can be retried; this one is queued" in cli.refuses(
        "tasks", "retry", task_id
    )
    cli.ok("tasks", "cancel", task_id)
    assert "a cancelled task cannot become cancelled" in cli.refuses("tasks", "cancel", task_id)


def test_memory_queue_is_refused_by_the_cli(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAMMA_SERVICE__QUEUE__TYPE", "memory")
    assert "memory queue lives inside the daemon" in cli.refuses("tasks", "list")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"repository": "o/r", "issue": {"number": 1, "title": "\\ud800"}}', "lone surrogate"),
        ('{"repository": "o/r", "issue": {"number": 1}, "x": ' + "[" * 500 + "]" * 500 + "}",
         "nested too deeply"),
        ('{"repository": "o/r", "issue": {"number": NaN}}', "NaN is not valid JSON"),
        ('{"repository": "o/r", "issue": {"number": 1}, "issue": {"number": 2}}',
         "duplicate key 'issue'"),
        ('{"repository": "o/r", "issue": {"number": "12"}}', "valid integer"),
        ('{"repository": "o/r", "issue": {"number": 9223372036854775808}}', "less than or equal"),
        ('{"repository": ".../...", "issue": {"number": 1}}', "owner/name"),
    ],
)  # fmt: skip
def test_bad_payloads_are_one_line_exit_2(cli: Cli, payload: str, message: str) -> None:
    err = cli.refuses("tasks", "add", "issue_assigned", "--payload", payload)
    assert message in err and err.count("\n") == 1
    assert not cli.database.exists()  # refused before the store was opened


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"repository": "o/r", "issue": {"number": 1, "title": "\xff"}}', "is not UTF-8"),
        (b'{"repository": "o/r", "issue": {"number": 1, "title": "\\udc00"}}', "lone surrogate"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_bad_payload_files_are_one_line_exit_2(
    cli: Cli, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "payload.json"
    path.write_bytes(content)
    err = cli.refuses("tasks", "add", "issue_assigned", "--payload", f"@{path}")
    assert message in err and str(path) in err and err.count("\n") == 1
    assert not cli.database.exists()  # refused before the store was opened
