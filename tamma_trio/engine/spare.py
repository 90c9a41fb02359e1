"""One spare worktree per clone: a finished task's checkout is cleaned and kept, and the next
task switches it to its own branch instead of checking out every file again.

A fresh ``git worktree add`` writes the whole tree (tens of thousands of files on a large
repository) and leaves an index whose newest entries the first status must hash again;
switching a kept worktree writes only the files that differ between the two commits. The spare
is cleaned when it is parked (``reset --hard``, then ``clean -ffdx``: the last task's edits,
untracked and ignored files are gone), so no task sees another's leftovers. Every step may fail
without harm: parking falls back to removing the worktree, taking to a fresh ``worktree add``.
The caller holds the clone's lock around both.
"""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import trio

from tamma_trio.engine.git import Git

SPARE_NAME = ".spare"
_CLEANING = (["reset", "--hard", "-q"], ["clean", "-ffdxq"], ["checkout", "-q", "--detach"])


class SpareWorktree:
    def __init__(self, git: Git, clone_dir: Path, directory: Path) -> None:
        self.git = git
        self.clone_dir = clone_dir
        self.directory = directory

    def available(self) -> bool:
        return (self.directory / ".git").is_file()

    async def park(self, workdir: Path) -> bool:
        """Clean ``workdir`` and keep it as the spare; False when a spare is kept already,
        there is no worktree, or git refused (the caller then removes ``workdir``)."""
        if self.available() or not (workdir / ".git").is_file():
            return False
        for args in _CLEANING:
            if not await self.git.succeeds(args, workdir):
                return False
        return await self._move(workdir, self.directory)

    async def take(self, workdir: Path, checkout: list[str]) -> bool:
        """Move the spare to ``workdir`` and run ``git checkout <checkout>`` there; False when
        there is no spare or a step failed, with ``workdir`` removed for a fresh worktree."""
        if not self.available():
            return False
        if await self._move(self.directory, workdir):
            if await self.git.succeeds(["checkout", "-q", *checkout], workdir):
                return True
            await self._drop(workdir)
        else:
            await self._drop(self.directory)
        return False

    async def _move(self, source: Path, target: Path) -> bool:
        move = ["worktree", "move", str(source), str(target)]
        return await self.git.succeeds(move, self.clone_dir)

    async def _drop(self, directory: Path) -> None:
        await self.git.run(
            ["worktree", "remove", "--force", str(directory)], self.clone_dir, check=False
        )
        await trio.to_thread.run_sync(partial(shutil.rmtree, directory, ignore_errors=True))
        await self.git.run(["worktree", "prune"], self.clone_dir)
