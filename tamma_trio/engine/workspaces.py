"""One Workspace per repository the forge serves, made on first use and kept for the daemon's life.

Each repository gets its own directory (clone, worktrees, logs) under the workspace root, so two
repositories never share a clone and a task's worktree is cheap: a checkout from a clone that is
only fetched, never cloned again. Forge-neutral: the forge says where to clone from and which
credentials a push needs; this module never knows which forge it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import trio

from tamma_trio.engine.forge.base import Forge
from tamma_trio.engine.git import Git
from tamma_trio.engine.workspace import Workspace
from tamma_trio.engine.worktree import Identity
from tamma_trio.errors import EngineError


class Workspaces:
    def __init__(
        self,
        forge: Forge,
        *,
        root_of: Callable[[str], Path],
        identity: Identity,
        git: Git,
    ) -> None:
        self.forge = forge
        self.root_of = root_of
        self.identity = identity
        self.git = git
        self._made: dict[str, Workspace] = {}
        self._lock = trio.Lock()  # two first tasks of one repository make one Workspace

    def check_served(self, repository: str) -> None:
        """Refuse a repository outside the forge's allowlist before anything touches it."""
        if repository not in self.forge.repositories:
            served = ", ".join(self.forge.repositories)
            raise EngineError(
                f"repository {repository} is not served here (configured: {served})",
                code="unknown_repository",
                retryable=False,
            )

    async def get(self, repository: str) -> Workspace:
        """The repository's Workspace; its clone URL and default branch come from the forge."""
        self.check_served(repository)
        made = self._made.get(repository)
        if made is not None:
            return made
        async with self._lock:
            if repository not in self._made:
                info = await self.forge.repository(repository)
                self._made[repository] = Workspace(
                    self.root_of(repository),
                    origin_url=info.clone_url,
                    repository=repository,
                    default_branch=info.default_branch,
                    identity=self.identity,
                    git=self.git,
                    remote_env=partial(self._remote_env, repository),
                )
            return self._made[repository]

    async def _remote_env(self, repository: str) -> Mapping[str, str]:
        return await self.forge.git_env(repository)

    async def prepare_all(self) -> None:
        """Clone (or fetch) every served repository, so a bad setup stops the daemon at start."""
        for repository in self.forge.repositories:
            await (await self.get(repository)).prepare()
