"""Retention of the worktrees and logs kept after unsuccessful tasks.

An issue's directories stay while any task of the issue is queued, running, failed, cancelled or
waiting for a human's approval; once none is left (its tasks were pruned, or the last one
succeeded and its own cleanup did not finish) they go. The daemon runs this after each retention
sweep and `tasks prune` after its own, so `workspaces/` is bounded by the tasks the store keeps.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

from tamma_trio.config import Config
from tamma_trio.engine.git import Git
from tamma_trio.engine.kept_work import KeptWorkLayout
from tamma_trio.models import ESCALATED_FOR_APPROVAL, Task, TaskStatus
from tamma_trio.store.base import TaskStore

log = logging.getLogger(__name__)

KEEPING = frozenset(
    {TaskStatus.QUEUED, TaskStatus.IN_PROGRESS, TaskStatus.FAILED, TaskStatus.CANCELLED}
)


def keeps_work(task: Task) -> bool:
    """Whether this task still needs its issue's worktree and logs."""
    if task.status in KEEPING:
        return True
    action = (task.result or {}).get("action")
    return task.status is TaskStatus.COMPLETED and action == ESCALATED_FOR_APPROVAL


class WorkspaceRetention:
    def __init__(self, store: TaskStore, kept: KeptWorkLayout) -> None:
        self.store = store
        self.kept = kept

    async def sweep(self, *, gone: Collection[int] = (), dry_run: bool = False) -> int:
        """Remove the directories no task needs; how many issues' worth.

        ``gone`` are task ids to count as already pruned (a dry run's would-be prune).
        """
        removed = 0
        for issue in self.kept.issues():
            tasks = await self.store.tasks_of_subject(issue.subject)
            if any(keeps_work(task) for task in tasks if task.id not in gone):
                continue
            if not dry_run:
                await self.kept.discard(issue)
            removed += 1
        if removed and not dry_run:
            log.info("retention: removed the worktrees and logs of %d issue(s)", removed)
        return removed


def workspace_retention(config: Config, store: TaskStore) -> WorkspaceRetention | None:
    """The sweeper for the configured engine without building it (for `tasks prune`, which
    must not need the forge's credentials), or None when the engine keeps no workspaces."""
    if config.engine.name != "workflow":
        return None
    from tamma_trio.engine.workflow_options import parse_options

    options = parse_options(config.engine.options()).resolved(Path.cwd())
    repositories = tuple(options.forge.repositories)
    layout = KeptWorkLayout(options.repo_root, repositories, Git(options.git_timeout))
    return WorkspaceRetention(store, layout)
