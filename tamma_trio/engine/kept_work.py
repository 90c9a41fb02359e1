"""The worktrees and logs a task leaves behind when it did not succeed, found on disk.

A successful task's worktree and logs are removed when it ends; a failed, escalated or
cancelled one keeps them for the human who looks into it, until the task is retried (the rerun
resumes in the same worktree) or pruned. Pruning works from the disk, not from the pruned rows:
every issue directory under a served repository's workspace is one ``KeptIssue``, and the
caller decides from the store whether any task still needs it. So a directory whose task was
pruned by hand, by another process or before a crash is still found and removed.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import trio

from tamma_trio.engine.git import Git

ISSUE_DIRS = ("worktrees", "tasks")  # the per-issue directories of a repository's workspace
_ISSUE_NAME = re.compile(r"^(\d+)(?:-scratch)?$")


@dataclass(frozen=True)
class KeptIssue:
    repository: str
    number: int
    root: Path  # the repository's workspace directory (clone, worktrees, logs)

    @property
    def subject(self) -> str:
        """The store's subject key of the issue's tasks."""
        return f"{self.repository}#{self.number}"

    def paths(self) -> list[Path]:
        """Every directory of this issue that exists: worktree, scratch checkout, logs."""
        number = str(self.number)
        candidates = [
            self.root / "worktrees" / number,
            self.root / "worktrees" / f"{number}-scratch",
            self.root / "tasks" / number,
        ]
        return [path for path in candidates if path.exists()]


def kept_issues(root_of: Callable[[str], Path], repositories: Iterable[str]) -> list[KeptIssue]:
    """Issues of the served repositories that have a worktree or logs on disk, by number."""
    found: dict[tuple[str, int], KeptIssue] = {}
    for repository in repositories:
        root = root_of(repository)
        for kind in ISSUE_DIRS:
            directory = root / kind
            entries = directory.iterdir() if directory.is_dir() else iter(())
            for entry in entries:
                matched = _ISSUE_NAME.match(entry.name)
                if matched is not None:
                    number = int(matched.group(1))
                    found[(repository, number)] = KeptIssue(repository, number, root)
    return sorted(found.values(), key=lambda kept: (kept.repository, kept.number))


async def discard(kept: KeptIssue, git: Git) -> None:
    """Delete the issue's directories, then let git forget the worktree it no longer has.

    The local branch stays: a later task for the issue resumes on it, as after a success.
    """
    for path in kept.paths():
        await trio.to_thread.run_sync(shutil.rmtree, path)
    clone = kept.root / "repo"
    if (clone / ".git").is_dir():
        await git.run(["worktree", "prune"], clone, check=False)


class KeptWorkLayout:
    """Where an engine keeps per-issue directories: a root per served repository.

    ``discard_with`` is the running engine's own way to discard (under its clone's lock, so
    git's bookkeeping never races a task's worktree add); without it, as in `tasks prune`,
    the directories go directly.
    """

    def __init__(
        self,
        root_of: Callable[[str], Path],
        repositories: tuple[str, ...],
        git: Git,
        discard_with: Callable[[KeptIssue], Awaitable[None]] | None = None,
    ) -> None:
        self.root_of = root_of
        self.repositories = repositories
        self.git = git
        self.discard_with = discard_with

    def issues(self) -> list[KeptIssue]:
        return kept_issues(self.root_of, self.repositories)

    async def discard(self, kept: KeptIssue) -> None:
        if self.discard_with is not None:
            await self.discard_with(kept)
        else:
            await discard(kept, self.git)


@runtime_checkable
class KeepsWork(Protocol):
    """An engine that leaves per-issue directories behind for retention to remove."""

    def kept_work(self) -> KeptWorkLayout: ...
