"""`tamma-trio forge init`, `issues ...` and `prs ...` through the real CLI entry point, on real
files in tmp_path: what is printed, what is stored, and that bad input stores nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import trio

from tamma_trio.cli import main
from tamma_trio.engine.forge.local_db import ForgeDb
from tamma_trio.engine.forge.local_schema import CheckRow
from tests.test_local_forge_file import old_install
from tests.workflow_helpers import git_out

REPO = "local/demo"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory after `tamma-trio forge init`: tamma.toml, origin.git, nothing else."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TAMMA_CONFIG", raising=False)
    assert main(["forge", "init"]) == 0
    return tmp_path


def tasks_json(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["tasks", "list", "--json"]) == 0
    return list(json.loads(capsys.readouterr().out))


def test_forge_init_writes_config_and_a_bare_origin_with_a_tested_project(project: Path) -> None:
    config = (project / "tamma.toml").read_text()
    assert 'name = "workflow"' in config and '"{prompt_file}"' in config
    assert str(Path(__file__).parent.parent / "examples" / "agent.py") in config  # absolute
    origin = project / "origin.git"
    assert git_out(origin, "rev-parse", "--is-bare-repository") == "true"
    files = git_out(origin, "ls-tree", "--name-only", "main").split()
    assert {"greeting.py", "test_greeting.py", "CHANGELOG.md"} <= set(files)
    checkout = project / "checkout"
    subprocess.run(["git", "clone", "-q", str(origin), str(checkout)], check=True)
    tests = subprocess.run(
        ["python3", "-m", "unittest", "-q"], cwd=checkout, capture_output=True, check=False
    )
    assert tests.returncode == 0  # the starter project's own test passes


def test_forge_init_twice_keeps_config_and_origin_and_says_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = git_out(project / "origin.git", "rev-parse", "main")
    config = (project / "tamma.toml").read_text()
    capsys.readouterr()
    assert main(["forge", "init"]) == 0
    out = capsys.readouterr().out
    assert "kept tamma.toml" in out and "kept" in out.splitlines()[1]
    assert "origin.git (an existing bare repository)" in out
    assert git_out(project / "origin.git", "rev-parse", "main") == head
    assert (project / "tamma.toml").read_text() == config


def test_forge_init_refuses_an_origin_that_is_not_a_repository(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "other").mkdir()
    (project / "other" / "notes.txt").write_text("mine")
    config = project / "tamma.toml"
    config.write_text(config.read_text().replace('"./origin.git"', '"./other"'))
    capsys.readouterr()
    assert main(["forge", "init"]) == 2
    assert "other already exists and is not a bare git repository" in capsys.readouterr().err
    assert [p.name for p in (project / "other").iterdir()] == ["notes.txt"]


def test_issue_with_the_trigger_label_is_queued_like_a_webhook(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["issues", "add", "Add a farewell", "--body", "B", "--label", "tamma"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "1" and "queued task" in out.err
    tasks = tasks_json(capsys)
    assert [(t["type"], t["payload"]) for t in tasks] == [
        ("issue_assigned", {"repository": REPO, "issue": {"number": 1, "title": "Add a farewell"}})
    ]
    assert main(["issues", "show", "1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["labels"] == ["tamma"] and shown["body"] == "B" and shown["comments"] == []


def test_issue_without_trigger_is_only_stored_and_assign_queues_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["issues", "add", "Just a note", "--label", "docs"]) == 0
    capsys.readouterr()
    assert main(["tasks", "list", "--json"]) == 2  # the forge's own file holds the issue
    assert "nothing was queued there yet" in capsys.readouterr().err
    assert main(["issues", "add", "Do this", "--assign"]) == 0
    capsys.readouterr()
    tasks = tasks_json(capsys)
    assert len(tasks) == 1 and tasks[0]["payload"]["issue"]["number"] == 2  # type: ignore[index]
    assert main(["issues", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(i["number"], i["assignees"]) for i in listed] == [(1, []), (2, ["tamma"])]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["issues", "add", "  "], "title must not be empty"),
        (["issues", "add", "T", "--label", ""], "label must not be empty"),
        (["issues", "show", "7"], "has no issue #7"),
        (["prs", "show", "7"], "has no pull request #7"),
        (["prs", "approve", "7"], "has no pull request #7"),
        (["prs", "approve", "1", "--as", "tamma"], "cannot approve its own"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_stores_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    db = ForgeDb(project / "tamma.forge.db")
    try:
        assert db.items(REPO, "issue") == [] and db.items(REPO, "pull") == []
    finally:
        db.close()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[engine]\nname = "tests.fake_engine:create"\n', 'needs [engine] name = "workflow"'),
        ('[engine]\nname = "workflow"\nworkspaces = "x"\n', "engine.workspaces"),
    ],
)
def test_issues_need_a_valid_workflow_engine_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    config: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tamma.toml").write_text(config)
    assert main(["issues", "add", "T", "--label", "tamma"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "tamma.db").exists() and not (tmp_path / "tamma.forge.db").exists()


def test_an_older_install_keeps_its_issues_after_the_upgrade(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Releases before the forge had its own file kept its rows in tamma.db: the first command
    moves them to tamma.forge.db, and the issue numbers go on from there."""
    trio.run(old_install, project, REPO)
    capsys.readouterr()
    assert main(["issues", "show", "1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["title"], shown["labels"]) == ("Old issue", ["tamma"])
    assert [c["body"] for c in shown["comments"]] == ["a comment"]
    assert main(["issues", "add", "Next one"]) == 0
    assert capsys.readouterr().out.strip() == "2"
    assert (project / "tamma.forge.db").exists()


def test_prs_list_show_and_approve(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = ForgeDb(project / "tamma.forge.db")
    issue = db.add_issue(REPO, "One", "", "alice")
    number, _ = db.open_pull(
        REPO,
        title="One (#1)",
        body="Closes #1",
        head_branch="tamma/1-one",
        base="main",
        author="tamma",
        labels=["tamma-automated"],
    )
    db.record_head(REPO, number, "a" * 40)
    db.save_check(REPO, "a" * 40, CheckRow("success", 0, 0.5, "OK"))
    db.close()
    capsys.readouterr()
    assert main(["prs", "list", "--json"]) == 0
    assert [p["number"] for p in json.loads(capsys.readouterr().out)] == [issue + 1]
    assert main(["prs", "show", str(number), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["head_branch"] == "tamma/1-one" and shown["ci"] == {
        "state": "success",
        "exit_code": 0,
    }
    assert main(["prs", "show", str(number)]) == 0
    assert "tamma/1-one" in capsys.readouterr().out
    assert main(["prs", "approve", str(number), "--as", "alice"]) == 0
    db = ForgeDb(project / "tamma.forge.db")
    assert db.review_counts(REPO, number) == (1, False)
    db.close()
