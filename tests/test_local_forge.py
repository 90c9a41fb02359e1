"""The local forge on a real SQLite file and a real bare repository: rows, the shared number
sequence, pull requests found rather than duplicated, CI on the head sha, and merge commits
guarded by the expected sha."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from tamma_trio.engine.forge.local import LocalForge
from tamma_trio.engine.forge.local_db import ForgeDb
from tamma_trio.engine.forge.local_git import CiSettings
from tamma_trio.engine.forge.seed import STARTER_FILES, init_origin
from tamma_trio.engine.git import Git
from tamma_trio.errors import EngineError, StoreError
from tamma_trio.models import NewTask, TaskType
from tamma_trio.step_records import Target
from tamma_trio.store.sqlite import SqliteStore
from tests.workflow_helpers import REPO, UNITTEST, git_out

BOT = "tamma-bot"


def make_forge(
    tmp_path: Path, enqueued: list[NewTask] | None = None, **extra: object
) -> LocalForge:
    origin = tmp_path / "origin.git"
    if not origin.exists():
        init_origin(origin)

    async def enqueue(task: NewTask) -> None:
        assert enqueued is not None
        enqueued.append(task)

    return LocalForge(
        database=tmp_path / "forge.db",
        origin=origin,
        default_branch="main",
        git=Git(30),
        ci=CiSettings(UNITTEST, 60, tmp_path / "ci"),
        bot_name=BOT,
        bot_email="tamma-bot@localhost",
        enqueue=enqueue if enqueued is not None else None,
        **extra,  # type: ignore[arg-type]
    )


def push_branch(tmp_path: Path, branch: str, files: dict[str, str], start: str = "main") -> str:
    """Commit ``files`` on ``branch`` (from ``start``) and push it to origin; return the sha."""
    work = tmp_path / f"work-{branch.replace('/', '-')}"
    if not work.exists():
        subprocess.run(["git", "clone", "-q", str(tmp_path / "origin.git"), str(work)], check=True)
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=tamma-bot@localhost"]
    subprocess.run([*git, "fetch", "-q", "origin"], check=True)
    subprocess.run([*git, "checkout", "-q", "-B", branch, f"origin/{start}"], check=True)
    for name, text in files.items():
        (work / name).write_text(text)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", f"change on {branch}"], check=True)
    subprocess.run([*git, "push", "-q", "-f", "origin", f"{branch}:{branch}"], check=True)
    return git_out(work, "rev-parse", "HEAD")


async def open_pr(forge: LocalForge, branch: str, body: str = "Closes #1") -> int:
    pr = await forge.open_pull_request(
        REPO,
        title="t",
        body=body,
        head_branch=branch,
        base="main",
        author=BOT,
        labels=("tamma-automated",),
    )
    return pr.number


async def test_issue_rows_labels_assignees_and_comments(tmp_path: Path) -> None:
    forge = make_forge(tmp_path)
    async with forge:
        db = ForgeDb(tmp_path / "forge.db")
        first = db.add_issue(REPO, "One", "body", "alice", ["bug"])
        other_repo = db.add_issue("acme/other", "Elsewhere", "", "alice")
        db.close()
        target = Target(repository=REPO, number=first)
        await forge.add_labels(target, ("tamma:in-progress", "bug"))
        await forge.remove_label(target, "bug")
        await forge.assign(target, BOT)
        await forge.comment(target, "hello", BOT)
        issue = await forge.get_issue(REPO, first)
        comments = await forge.list_comments(target)
        with pytest.raises(EngineError) as missing:
            await forge.get_issue(REPO, 99)
        with pytest.raises(EngineError) as no_comment:
            await forge.comment(Target(repository=REPO, number=99), "x", BOT)
    assert first == 1 and other_repo == 1  # one sequence per repository
    assert issue.labels == ("tamma:in-progress",) and issue.assignees == (BOT,)
    assert issue.url == f"local://{REPO}/issues/1" and issue.author == "alice"
    assert [(c.author, c.body) for c in comments] == [(BOT, "hello")]
    assert missing.value.code == "not_found" and not missing.value.retryable
    assert no_comment.value.code == "not_found"


async def test_pull_request_is_found_not_duplicated_and_enqueued_once(tmp_path: Path) -> None:
    enqueued: list[NewTask] = []
    forge = make_forge(tmp_path, enqueued)
    async with forge:
        db = ForgeDb(tmp_path / "forge.db")
        issue = db.add_issue(REPO, "One", "", "alice")
        db.close()
        head = push_branch(tmp_path, "tamma/1-one", {"new.txt": "x\n"})
        first = await open_pr(forge, "tamma/1-one")
        second = await open_pr(forge, "tamma/1-one")
        pr = await forge.get_pull_request(REPO, first)
        with pytest.raises(EngineError) as not_issue:
            await forge.get_issue(REPO, first)
        with pytest.raises(EngineError) as unpushed:
            await open_pr(forge, "tamma/9-never-pushed")
    assert first == second == issue + 1
    assert pr.head_sha == head and pr.labels == ("tamma-automated",) and pr.author == BOT
    assert pr.head_branch == "tamma/1-one" and pr.state == "open"
    assert not_issue.value.code == "not_an_issue"
    assert unpushed.value.code == "branch_missing"
    assert len({task.key for task in enqueued}) == 1  # the store dedupes on this key
    assert enqueued[0].type is TaskType.PR_REVIEW_REQUESTED


async def test_ci_runs_once_per_head_sha_and_failure_is_stored(tmp_path: Path) -> None:
    forge = make_forge(tmp_path)
    async with forge:
        broken = {"greeting.py": "def greet(name):\n    return 'nope'\n"}
        push_branch(tmp_path, "tamma/1-bad", broken)
        number = await open_pr(forge, "tamma/1-bad")
        red = await forge.pull_request_status(REPO, number)
        again = await forge.pull_request_status(REPO, number)
        good = {"greeting.py": STARTER_FILES["greeting.py"]}
        fixed = push_branch(tmp_path, "tamma/1-bad", good, start="tamma/1-bad")
        green = await forge.pull_request_status(REPO, number)
        db = ForgeDb(tmp_path / "forge.db")
        check = db.check(REPO, red.head_sha)
        db.close()
    assert red.ci_state == "failure" and not red.ci_passed and red.mergeable is True
    assert "CI is failure" in red.reasons and not red.ready_to_merge
    assert again == red
    assert check is not None and check.state == "failure" and "FAILED" in check.output_tail
    assert green.head_sha == fixed and green.ci_state == "success" and green.ready_to_merge
    assert len(list((tmp_path / "ci").glob("*.log"))) == 2  # one CI run per sha


async def test_merge_commit_with_expected_sha_and_stale_sha_refused(tmp_path: Path) -> None:
    forge = make_forge(tmp_path)
    async with forge:
        db = ForgeDb(tmp_path / "forge.db")
        issue = db.add_issue(REPO, "One", "", "alice")
        db.close()
        head = push_branch(tmp_path, "tamma/1-one", {"new.txt": "x\n"})
        number = await open_pr(forge, "tamma/1-one", body=f"Closes #{issue}")
        main_before = git_out(tmp_path / "origin.git", "rev-parse", "main")
        stale = await forge.merge_pull_request(REPO, number, "f" * 40, "Merge")
        unchanged = git_out(tmp_path / "origin.git", "rev-parse", "main")
        merged = await forge.merge_pull_request(REPO, number, head, "Merge #2")
        twice = await forge.merge_pull_request(REPO, number, head, "Merge #2")
        status = await forge.pull_request_status(REPO, number)
        closed = await forge.get_issue(REPO, issue)
    assert not stale.merged and "head moved" in stale.message and unchanged == main_before
    assert merged.merged and merged.sha == git_out(tmp_path / "origin.git", "rev-parse", "main")
    parents = git_out(tmp_path / "origin.git", "log", "-1", "--format=%P", "main").split()
    assert parents == [main_before, head]
    assert git_out(tmp_path / "origin.git", "log", "-1", "--format=%s|%ae", "main") == (
        "Merge #2|tamma-bot@localhost"
    )
    assert not twice.merged and "merged" in twice.message
    assert status.state == "merged" and closed.state == "closed"  # "Closes #1" closed it


async def test_conflicting_pull_request_is_not_mergeable(tmp_path: Path) -> None:
    forge = make_forge(tmp_path)
    async with forge:
        head = push_branch(tmp_path, "tamma/1-one", {"README.md": "ours\n"})
        number = await open_pr(forge, "tamma/1-one")
        push_branch(tmp_path, "main", {"README.md": "theirs\n"})
        status = await forge.pull_request_status(REPO, number)
        result = await forge.merge_pull_request(REPO, number, head, "Merge")
    assert status.mergeable is False and "conflicts with the base branch" in status.reasons
    assert not result.merged and "conflicts" in result.message


async def test_required_approvals_are_counted(tmp_path: Path) -> None:
    forge = make_forge(tmp_path, required_approvals=1)
    async with forge:
        push_branch(tmp_path, "tamma/1-one", {"new.txt": "x\n"})
        number = await open_pr(forge, "tamma/1-one")
        waiting = await forge.pull_request_status(REPO, number)
        db = ForgeDb(tmp_path / "forge.db")
        db.review(REPO, number, "alice", "approved")
        db.close()
        approved = await forge.pull_request_status(REPO, number)
    assert waiting.approvals == 0 and not waiting.ready_to_merge
    assert "0 of 1 required approvals" in waiting.reasons
    assert approved.approvals == 1 and approved.ready_to_merge


@pytest.mark.parametrize("empty_dir", [True, False])
async def test_open_refuses_a_missing_origin(tmp_path: Path, empty_dir: bool) -> None:
    if empty_dir:
        (tmp_path / "origin.git").mkdir()
    forge = LocalForge(
        database=tmp_path / "forge.db",
        origin=tmp_path / "origin.git",
        default_branch="main",
        git=Git(30),
        ci=CiSettings(UNITTEST, 60, tmp_path / "ci"),
        bot_name=BOT,
        bot_email="tamma-bot@localhost",
    )
    with pytest.raises(EngineError) as caught:
        async with forge:
            pass
    assert caught.value.code == "origin_missing" and "forge init" in str(caught.value)
    assert not (tmp_path / "forge.db").exists()


def test_forge_refuses_another_applications_database(tmp_path: Path) -> None:
    path = tmp_path / "theirs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(EngineError) as caught:
        ForgeDb(path)
    assert caught.value.code == "forge_db_foreign"
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")]
    conn.close()
    assert tables == ["invoices"]  # nothing created


async def test_forge_and_task_store_refuse_each_others_files(tmp_path: Path) -> None:
    forge_file, store_file = tmp_path / "tamma.forge.db", tmp_path / "tamma.db"
    ForgeDb(forge_file).close()
    async with SqliteStore(store_file):
        pass
    with pytest.raises(StoreError, match="another application"):
        async with SqliteStore(forge_file):
            pass
    with pytest.raises(EngineError, match="the task store's SQLite database") as caught:
        ForgeDb(store_file)
    assert caught.value.code == "forge_db_foreign"
