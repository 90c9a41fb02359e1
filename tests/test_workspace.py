"""The git workspace on real repositories: clone and fetch, branch reuse and suffixes, the checks
on what the agent did, diff stats, commit, push and worktree removal."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import trio

from tamma_trio.engine.forge.seed import init_origin
from tamma_trio.engine.git import Git
from tamma_trio.engine.spare import SPARE_NAME
from tamma_trio.engine.workspace import Workspace, slugify
from tamma_trio.engine.worktree import Identity
from tamma_trio.errors import EngineError
from tests.workflow_helpers import git_out

BOT = Identity("tamma-bot", "tamma-bot@localhost")


def workspace(tmp_path: Path) -> Workspace:
    origin = tmp_path / "origin.git"
    if not origin.exists():
        init_origin(origin)
    return Workspace(
        tmp_path / "ws",
        origin_url=str(origin),
        repository="acme/demo",
        default_branch="main",
        identity=BOT,
        git=Git(timeout=30),
    )


def push_from_elsewhere(tmp_path: Path, branch: str, email: str, start: str = "main") -> str:
    """Someone (or our bot, on another host) pushes ``branch`` to origin."""
    other = tmp_path / f"other-{email.split('@')[0]}"
    subprocess.run(["git", "clone", "-q", str(tmp_path / "origin.git"), str(other)], check=True)
    run = ["git", "-C", str(other), "-c", "user.name=x", "-c", f"user.email={email}"]
    subprocess.run([*run, "checkout", "-q", "-B", branch, f"origin/{start}"], check=True)
    (other / "theirs.txt").write_text("theirs\n")
    subprocess.run([*run, "add", "-A"], check=True)
    subprocess.run([*run, "commit", "-q", "-m", "their work"], check=True)
    subprocess.run([*run, "push", "-q", "origin", branch], check=True)
    return git_out(other, "rev-parse", "HEAD")


def test_slugify() -> None:
    assert slugify("Fix: the API!  (v2)") == "fix-the-api-v2"
    assert slugify("!!!") == "issue"
    assert len(slugify("word " * 30)) <= 40 and not slugify("word " * 30).endswith("-")


async def test_new_branch_worktree_identity_and_layout(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    branch = await ws.open_branch(7, "Add a farewell")
    workdir = Path(branch.workdir)
    assert branch.name == "tamma/7-add-a-farewell" and branch.base == "main"
    assert workdir == tmp_path / "ws" / "worktrees" / "7"
    assert branch.base_sha == git_out(tmp_path / "origin.git", "rev-parse", "main")
    assert git_out(workdir, "config", "user.email") == "tamma-bot@localhost"
    assert git_out(workdir, "symbolic-ref", "--short", "HEAD") == branch.name
    assert (workdir / "greeting.py").is_file()


async def test_open_branch_again_reuses_worktree_and_branch(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    first = await ws.open_branch(7, "Add a farewell")
    (Path(first.workdir) / "new.txt").write_text("x\n")
    assert await ws.commit_all(Path(first.workdir), "work (#7)", 7)
    await ws.remove_worktree(7)
    assert not Path(first.workdir).exists()
    again = await ws.open_branch(7, "A different title now")
    assert again.name == first.name and again.base_sha == first.base_sha
    assert (Path(again.workdir) / "new.txt").read_text() == "x\n"  # resumed on our branch


async def test_someone_elses_remote_branch_gets_a_suffix(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    push_from_elsewhere(tmp_path, "tamma/7-add-a-farewell", "alice@example.com")
    branch = await ws.open_branch(7, "Add a farewell")
    assert branch.name == "tamma/7-add-a-farewell-2"
    assert not (Path(branch.workdir) / "theirs.txt").exists()


async def test_our_remote_branch_is_resumed(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    sha = push_from_elsewhere(tmp_path, "tamma/7-add-a-farewell", BOT.email)
    branch = await ws.open_branch(7, "Add a farewell")
    assert branch.name == "tamma/7-add-a-farewell"
    assert git_out(Path(branch.workdir), "rev-parse", "HEAD") == sha


async def test_agent_switching_branch_or_rewriting_base_is_refused(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    branch = await ws.open_branch(7, "Careful")
    workdir = Path(branch.workdir)
    subprocess.run(["git", "-C", str(workdir), "checkout", "-q", "-b", "elsewhere"], check=True)
    with pytest.raises(EngineError) as switched:
        await ws.verify_branch(branch)
    assert switched.value.code == "agent_switched_branch" and not switched.value.retryable
    subprocess.run(["git", "-C", str(workdir), "checkout", "-q", branch.name], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(workdir),
            "-c",
            "user.email=a@b",
            "-c",
            "user.name=a",
            "commit",
            "-q",
            "--amend",
            "-m",
            "rewritten base",
        ],
        check=True,
    )
    with pytest.raises(EngineError) as rewritten:
        await ws.verify_branch(branch)
    assert rewritten.value.code == "agent_rewrote_base"


async def test_commit_diff_stats_and_agent_commits_folded_in(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    branch = await ws.open_branch(7, "Stats")
    workdir = Path(branch.workdir)
    start = await ws.head(workdir)
    assert not await ws.commit_all(workdir, "nothing (#7)", 7)  # nothing to commit
    (workdir / "greeting.py").write_text("def greet(name):\n    return name\n")
    (workdir / "new.txt").write_text("a\nb\nc\n")
    (workdir / "README.md").unlink()
    run = ["git", "-C", str(workdir), "-c", "user.email=agent@x", "-c", "user.name=agent"]
    subprocess.run([*run, "add", "new.txt"], check=True)
    subprocess.run([*run, "commit", "-q", "-m", "agent committed"], check=True)
    await ws.squash_to(workdir, start)
    assert await ws.commit_all(workdir, "Stats (#7)", 7)
    files = {f.path: (f.status, f.added, f.removed) for f in await ws.diff_stats(workdir, start)}
    assert files == {"README.md": ("D", 0, 3), "greeting.py": ("M", 2, 2), "new.txt": ("A", 3, 0)}
    assert git_out(workdir, "log", "-1", "--format=%ae|%s|%P") == f"{BOT.email}|Stats (#7)|{start}"
    assert await ws.head_is_our_implementation(branch, 7)
    assert not await ws.head_is_our_implementation(branch, 8)


async def test_push_fast_forwards_and_never_overwrites_others(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    branch = await ws.open_branch(7, "Push")
    workdir = Path(branch.workdir)
    (workdir / "a.txt").write_text("a\n")
    await ws.commit_all(workdir, "Push (#7)", 7)
    sha = await ws.head(workdir)
    await ws.push(branch, sha)
    await ws.push(branch, sha)  # again: a no-op
    assert git_out(tmp_path / "origin.git", "rev-parse", branch.name) == sha
    push_from_elsewhere(tmp_path, branch.name, "alice@example.com", start=branch.name)
    (workdir / "b.txt").write_text("b\n")
    await ws.commit_all(workdir, "More (#7)", 7)
    with pytest.raises(EngineError) as caught:
        await ws.push(branch, await ws.head(workdir))
    assert caught.value.code == "git_failed" and not caught.value.retryable
    assert git_out(tmp_path / "origin.git", "log", "-1", "--format=%ae", branch.name) == (
        "alice@example.com"
    )


async def test_fetch_before_each_task_sees_new_origin_commits(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    await ws.prepare()
    new_main = push_from_elsewhere(tmp_path, "main", "alice@example.com")
    branch = await ws.open_branch(9, "Later")
    assert branch.base_sha == new_main


async def test_ensure_worktree_recreates_a_lost_worktree_or_says_the_work_is_gone(
    tmp_path: Path,
) -> None:
    ws = workspace(tmp_path)
    branch = await ws.open_branch(7, "Lost")
    subprocess.run(["rm", "-rf", branch.workdir], check=True)
    assert (await ws.ensure_worktree(branch) / "greeting.py").is_file()
    await ws.remove_worktree(7)
    subprocess.run(["git", "-C", str(ws.clone_dir), "branch", "-q", "-D", branch.name], check=True)
    with pytest.raises(EngineError) as caught:
        await ws.ensure_worktree(branch)
    assert caught.value.code == "workspace_lost" and not caught.value.retryable


async def test_git_timeout_is_retryable(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as caught:
        await Git(timeout=0.000_001).run(["version"], tmp_path)
    assert caught.value.code == "git_timeout" and caught.value.retryable


async def test_missing_default_branch_is_not_retryable(tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    init_origin(origin, default_branch="trunk")
    ws = workspace(tmp_path)
    with pytest.raises(EngineError) as caught:
        await ws.open_branch(1, "x")
    assert caught.value.code == "no_default_branch" and not caught.value.retryable


async def test_a_human_fix_on_our_branch_is_picked_up_on_the_next_run(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    branch = await ws.open_branch(7, "Fix")
    workdir = Path(branch.workdir)
    (workdir / "a.txt").write_text("a\n")
    await ws.commit_all(workdir, "Fix (#7)", 7)
    await ws.push(branch, await ws.head(workdir))
    await ws.remove_worktree(7)
    human = push_from_elsewhere(tmp_path, branch.name, "alice@example.com", start=branch.name)
    again = await ws.open_branch(7, "Fix")
    assert again.name == branch.name
    assert git_out(Path(again.workdir), "rev-parse", "HEAD") == human


async def test_tasks_side_by_side_share_the_clone_safely(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    opened: dict[int, str] = {}

    async def open_one(number: int) -> None:
        opened[number] = (await ws.open_branch(number, f"Task {number}")).name

    async with trio.open_nursery() as nursery:
        for number in range(1, 6):
            nursery.start_soon(open_one, number)
    assert opened == {n: f"tamma/{n}-task-{n}" for n in range(1, 6)}
    async with trio.open_nursery() as nursery:
        for number in range(1, 6):
            nursery.start_soon(ws.remove_worktree, number)
    assert [p.name for p in (tmp_path / "ws" / "worktrees").iterdir()] == [".spare"]


async def test_a_finished_worktree_is_cleaned_and_switched_for_the_next_task(
    tmp_path: Path,
) -> None:
    ws = workspace(tmp_path)
    first = await ws.open_branch(7, "First")
    one = Path(first.workdir)
    (one / ".gitignore").write_text("*.log\n")
    (one / "new.txt").write_text("x\n")
    assert await ws.commit_all(one, "First (#7)", 7)
    (one / "out.log").write_text("ignored\n")
    (one / "untracked.txt").write_text("left\n")
    (one / "greeting.py").write_text("edited, never committed\n")
    await ws.remove_worktree(7)
    spare = tmp_path / "ws" / "worktrees" / ".spare"
    assert not one.exists() and (spare / ".git").is_file()
    kept = (spare / "README.md").stat().st_ino

    second = await ws.open_branch(8, "Second")
    two = Path(second.workdir)
    assert git_out(two, "symbolic-ref", "--short", "HEAD") == second.name
    assert git_out(two, "rev-parse", "HEAD") == second.base_sha
    assert second.base_sha == git_out(tmp_path / "origin.git", "rev-parse", "main")
    assert git_out(two, "status", "--porcelain", "--untracked-files=all", "--ignored") == ""
    assert not any((two / name).exists() for name in ("new.txt", "out.log", "untracked.txt"))
    assert (two / "greeting.py").read_bytes() == git_blob(two, "HEAD:greeting.py")
    assert (two / "README.md").stat().st_ino == kept  # switched in place, not checked out anew
    assert not spare.exists()
    assert git_out(ws.clone_dir, "log", "-1", "--format=%s", first.name) == "First (#7)"


async def test_a_spare_that_cannot_switch_gives_way_to_a_fresh_worktree(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    await ws.open_branch(7, "First")
    await ws.remove_worktree(7)
    spare = tmp_path / "ws" / "worktrees" / ".spare"
    push_from_elsewhere(tmp_path, "main", "alice@example.com")  # main gains theirs.txt
    (spare / "theirs.txt").write_text("in the way\n")  # the switch would overwrite it

    branch = await ws.open_branch(8, "Second")
    workdir = Path(branch.workdir)
    assert (workdir / "theirs.txt").read_text() == "theirs\n"
    assert git_out(workdir, "symbolic-ref", "--short", "HEAD") == branch.name
    assert not spare.exists()
    listed = git_out(ws.clone_dir, "worktree", "list", "--porcelain")
    assert SPARE_NAME not in listed and str(workdir) in listed


def git_blob(workdir: Path, spec: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(workdir), "cat-file", "-p", spec], capture_output=True, check=True
    ).stdout
