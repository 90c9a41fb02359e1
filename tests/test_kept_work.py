"""Worktrees and logs kept after unsuccessful tasks, on a real clone and real git worktrees in
tmp_path with a real SQLite store: which issues keep them, and their removal once pruned."""

from __future__ import annotations

import time
from pathlib import Path

import trio
import trio.testing

from tamma_trio.engine.git import Git
from tamma_trio.engine.kept_work import KeptWorkLayout
from tamma_trio.models import NewTask, Task, TaskStatus
from tamma_trio.store.sqlite import SqliteStore
from tamma_trio.workspace_retention import WorkspaceRetention
from tests.test_workspace import workspace
from tests.workflow_helpers import agent_argv, git_out, make_engine

REPO = "acme/demo"


def issue(number: int) -> NewTask:
    return NewTask.build("issue_assigned", {"repository": REPO, "issue": {"number": number}})


async def ended(store: SqliteStore, number: int, status: TaskStatus, action: str = "") -> Task:
    """A task for issue ``number`` that ended with ``status`` (queued: not claimed at all)."""
    task, _ = await store.add(issue(number))
    if status is TaskStatus.QUEUED:
        return task
    [claimed] = await store.claim(1)
    assert claimed.lease_token is not None
    if status is TaskStatus.FAILED:
        await store.fail(claimed.id, claimed.lease_token, "tests failed")
    else:
        await store.complete(claimed.id, claimed.lease_token, {"action": action})
    return await store.get(task.id)


async def test_kept_work_stays_while_a_task_needs_it_and_goes_once_pruned(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    for number in (7, 8, 9, 10):
        await ws.open_branch(number, f"Issue {number}")
        (ws.task_dir(number)).mkdir(parents=True)
        (ws.task_dir(number) / "agent-implement.log").write_text("the agent said\n")
    async with SqliteStore(tmp_path / "tasks.db") as store:
        failed = await ended(store, 7, TaskStatus.FAILED)
        await ended(store, 8, TaskStatus.COMPLETED, "auto_approved")  # its own cleanup never ran
        await ended(store, 9, TaskStatus.COMPLETED, "escalated_for_approval")
        await ended(store, 10, TaskStatus.QUEUED)
        layout = KeptWorkLayout(lambda _repo: ws.root, (REPO,), Git(timeout=30))
        retention = WorkspaceRetention(store, layout)
        assert [kept.number for kept in layout.issues()] == [7, 8, 9, 10]

        assert await retention.sweep() == 1  # only #8: no task of it needs its worktree
        assert not ws.worktree_dir(8).exists() and not ws.task_dir(8).exists()
        assert [kept.number for kept in layout.issues()] == [7, 9, 10]

        assert await retention.sweep(gone={failed.id}, dry_run=True) == 1  # #7 once pruned
        assert ws.worktree_dir(7).exists()
        assert await store.prune(time.time() + 1, [TaskStatus.FAILED], 10) == [failed.id]
        assert await retention.sweep() == 1
        assert not ws.worktree_dir(7).exists() and not ws.task_dir(7).exists()
        listed = git_out(ws.clone_dir, "worktree", "list", "--porcelain")
        assert "worktrees/7\n" not in listed and "worktrees/9\n" in listed  # git forgot #7's

    again = await ws.open_branch(7, "Issue 7")  # a later task resumes on the kept branch
    assert again.name == "tamma/7-issue-7" and Path(again.workdir).is_dir()


async def test_a_missing_workspace_has_nothing_to_sweep(tmp_path: Path) -> None:
    layout = KeptWorkLayout(lambda _repo: tmp_path / "absent", (REPO,), Git(timeout=30))
    async with SqliteStore(tmp_path / "tasks.db") as store:
        assert await WorkspaceRetention(store, layout).sweep() == 0


async def test_the_daemons_engine_discards_under_its_clones_lock(tmp_path: Path) -> None:
    """Retention in the daemon goes through the engine, so git's worktree bookkeeping never
    races a task working in the same clone: nothing is removed while the lock is held."""
    engine, _database = make_engine(tmp_path, agent_argv("append_line.py", "{prompt_file}"))
    async with engine:
        ws = await engine.workspaces.get(REPO)
        await ws.open_branch(5, "Five")
        layout = engine.kept_work()
        [kept] = layout.issues()
        assert (kept.repository, kept.number) == (REPO, 5)
        async with trio.open_nursery() as nursery, ws._clone_lock:  # a task uses the clone
            nursery.start_soon(layout.discard, kept)
            await trio.testing.wait_all_tasks_blocked()
            assert ws._clone_lock.statistics().tasks_waiting == 1  # the discard waits its turn
            assert ws.worktree_dir(5).is_dir()
        assert not ws.worktree_dir(5).exists() and layout.issues() == []
