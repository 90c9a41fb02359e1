"""The engine's git work: a clone per repository and one worktree per task.

Layout under ``root`` (one directory per repository):

    repo/               the clone of origin, fetched before each task; nobody edits it
    worktrees/<issue>/  the task's worktree on branch tamma/<issue>-<slug>
    worktrees/.spare/   a finished task's worktree, cleaned, kept for the next task (spare.py)
    tasks/<issue>/      prompt, agent and test logs (capped)

Both per-issue directories go when the issue's task succeeds (its worktree becomes the spare);
after a failure, an escalation or a cancel they stay for a human until a rerun reuses them or
retention prunes them (kept_work.py).

The engine commits and pushes; the agent only edits files. A branch is *ours* when it exists in our
clone (only the engine creates branches there) or when its tip on origin was committed by the
bot, so a restarted task resumes on its branch instead of starting a second one.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from tamma_trio.engine.git import Git, GitResult, git_failure
from tamma_trio.engine.kept_work import KeptIssue, discard
from tamma_trio.engine.spare import SPARE_NAME, SpareWorktree
from tamma_trio.engine.worktree import Identity, WorktreeOps
from tamma_trio.errors import EngineError
from tamma_trio.step_records import Branch

BRANCH_PREFIX = "tamma/"
MAX_SUFFIX = 9
LOCAL = ""  # start point meaning "our local branch already exists"

RemoteEnv = Callable[[], Awaitable[Mapping[str, str]]]


async def no_credentials() -> Mapping[str, str]:
    return {}


def slugify(title: str, limit: int = 40) -> str:
    """Branch-safe slug of an issue title ("Fix: the API!" -> "fix-the-api")."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:limit].rstrip("-") or "issue"


class Workspace(WorktreeOps):
    """The clone of origin and the task worktrees in it.

    Operations on the clone itself (fetch, worktree add and remove, push) hold ``_clone_lock``:
    tasks run side by side and git's own lock files would otherwise make one of them fail.
    Commands that reach origin get ``remote_env()`` (the forge's credentials, asked for each
    time because an App token expires), so no secret is ever in a URL, an argv or .git/config.
    """

    def __init__(
        self,
        root: Path,
        *,
        origin_url: str,
        repository: str,
        default_branch: str,
        identity: Identity,
        git: Git,
        remote_env: RemoteEnv = no_credentials,
    ) -> None:
        super().__init__(git, identity)
        self.root = root
        self.clone_dir = root / "repo"
        self._clone_lock = trio.Lock()
        self.origin_url = origin_url
        self.repository = repository
        self.default_branch = default_branch
        self._remote_env = remote_env
        self._spare = SpareWorktree(git, self.clone_dir, root / "worktrees" / SPARE_NAME)

    async def _remote(self, args: list[str], cwd: Path, *, check: bool = True) -> GitResult:
        env = await self._remote_env()
        return await self.git.run(args, cwd, check=check, remote=True, env=env)

    def worktree_dir(self, issue_number: int) -> Path:
        return self.root / "worktrees" / str(issue_number)

    def task_dir(self, issue_number: int) -> Path:
        return self.root / "tasks" / str(issue_number)

    # --- the clone ------------------------------------------------------------------------
    async def prepare(self) -> None:
        """Clone origin once, then fetch it, so each task starts from origin's current state."""
        async with self._clone_lock:
            await self._prepare()

    async def _prepare(self) -> None:
        if not (self.clone_dir / ".git").is_dir():
            await self._clone()
        await self._remote(["fetch", "--prune", "origin"], self.clone_dir)
        await self.git.run(["worktree", "prune"], self.clone_dir)

    async def _clone(self) -> None:
        if self.clone_dir.exists():
            await trio.to_thread.run_sync(shutil.rmtree, self.clone_dir)
        self.clone_dir.parent.mkdir(parents=True, exist_ok=True)
        await self._remote(
            ["clone", "--no-checkout", "--origin", "origin", self.origin_url, str(self.clone_dir)],
            self.clone_dir.parent,
        )
        for key, value in (("user.name", self.identity.name), ("user.email", self.identity.email)):
            await self.git.run(["config", "--local", key, value], self.clone_dir)

    async def base_sha(self) -> str:
        ref = f"refs/remotes/origin/{self.default_branch}"
        if not await self._ref_exists(ref):
            raise EngineError(
                f"origin has no branch {self.default_branch!r}",
                code="no_default_branch",
                retryable=False,
            )
        return await self.git.output(["rev-parse", f"{ref}^{{commit}}"], self.clone_dir)

    # --- the task's branch and worktree ---------------------------------------------------
    async def open_branch(self, issue_number: int, title: str) -> Branch:
        """The task's branch in its worktree: reused when ours, else a fresh one (suffixed)."""
        async with self._clone_lock:
            return await self._open_branch(issue_number, title)

    async def _open_branch(self, issue_number: int, title: str) -> Branch:
        await self._prepare()
        await self.base_sha()  # a clear error when origin lacks the default branch
        existing = await self._existing_worktree_branch(issue_number)
        if existing is not None:
            return await self._branch_record(existing, issue_number)
        ours = await self._our_branch(issue_number)
        if ours is not None:  # a retitled issue keeps its branch
            if ours[1] == LOCAL:
                await self._catch_up(ours[0])
            await self._add_worktree(issue_number, *ours)
            return await self._branch_record(ours[0], issue_number)
        base = f"{BRANCH_PREFIX}{issue_number}-{slugify(title)}"
        for suffix in range(1, MAX_SUFFIX + 1):
            name = base if suffix == 1 else f"{base}-{suffix}"
            start = await self._start_point(name)
            if start is not None:
                await self._add_worktree(issue_number, name, start)
                return await self._branch_record(name, issue_number)
        raise EngineError(
            f"branches {base} to -{MAX_SUFFIX} all belong to someone else",
            code="branch_conflict",
            retryable=False,
        )

    async def _our_branch(self, issue_number: int) -> tuple[str, str] | None:
        """(name, start) of a branch for this issue that we made earlier, newest first."""
        prefix = f"{BRANCH_PREFIX}{issue_number}-"
        for ref in await self._refs(f"refs/heads/{prefix}*"):
            return ref.removeprefix("refs/heads/"), LOCAL
        for ref in await self._refs(f"refs/remotes/origin/{prefix}*"):
            start = await self._start_point(ref.removeprefix("refs/remotes/origin/"))
            if start is not None:
                return ref.removeprefix("refs/remotes/origin/"), start
        return None

    async def _catch_up(self, name: str) -> None:
        """Fast-forward our local branch to origin's when someone added commits there (a human
        fixing the branch before re-triggering the issue); a diverged branch is left alone."""
        remote_ref = f"refs/remotes/origin/{name}"
        if await self._ref_exists(remote_ref) and await self.git.succeeds(
            ["merge-base", "--is-ancestor", f"refs/heads/{name}", remote_ref], self.clone_dir
        ):
            await self.git.run(["branch", "-f", name, remote_ref], self.clone_dir)

    async def _refs(self, pattern: str) -> list[str]:
        listing = await self.git.output(
            ["for-each-ref", "--sort=-committerdate", "--format=%(refname)", pattern],
            self.clone_dir,
        )
        return listing.split()

    async def _start_point(self, name: str) -> str | None:
        """Where ``name`` starts: LOCAL for our existing branch, a ref, or None (not ours)."""
        if await self._ref_exists(f"refs/heads/{name}"):
            return LOCAL
        remote_ref = f"refs/remotes/origin/{name}"
        if await self._ref_exists(remote_ref):
            author = await self.git.output(
                ["log", "-1", "--format=%ae", remote_ref], self.clone_dir
            )
            return remote_ref if author == self.identity.email else None
        return f"refs/remotes/origin/{self.default_branch}"

    async def _ref_exists(self, ref: str) -> bool:
        return await self.git.succeeds(["rev-parse", "--verify", "--quiet", ref], self.clone_dir)

    async def _add_worktree(self, issue_number: int, name: str, start: str) -> None:
        directory = self.worktree_dir(issue_number)
        if directory.exists():  # a leftover that git no longer knows (pruned by prepare)
            await trio.to_thread.run_sync(shutil.rmtree, directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        checkout = [name] if start == LOCAL else ["-b", name, start]
        if await self._spare.take(directory, checkout):
            return
        where = str(directory)
        args = [where, name] if start == LOCAL else ["-b", name, where, start]
        await self.git.run(["worktree", "add", "-q", *args], self.clone_dir)

    async def _existing_worktree_branch(self, issue_number: int) -> str | None:
        directory = self.worktree_dir(issue_number)
        if not (directory / ".git").exists():
            return None
        result = await self.git.run(
            ["symbolic-ref", "--short", "-q", "HEAD"], directory, check=False
        )
        name = result.stdout.strip()
        return name if result.code == 0 and name.startswith(BRANCH_PREFIX) else None

    async def _branch_record(self, name: str, issue_number: int) -> Branch:
        origin_main = f"refs/remotes/origin/{self.default_branch}"
        base_sha = await self.git.output(
            ["merge-base", origin_main, f"refs/heads/{name}"], self.clone_dir
        )
        return Branch(
            repository=self.repository,
            name=name,
            base=self.default_branch,
            base_sha=base_sha,
            workdir=str(self.worktree_dir(issue_number)),
        )

    async def ensure_worktree(self, branch: Branch) -> Path:
        """The branch's worktree, re-added from our clone if it vanished (a restart elsewhere)."""
        workdir = Path(branch.workdir)
        if (workdir / ".git").exists():
            return workdir
        async with self._clone_lock:
            return await self._readd_worktree(branch, workdir)

    async def _readd_worktree(self, branch: Branch, workdir: Path) -> Path:
        if not await self._ref_exists(f"refs/heads/{branch.name}"):
            raise EngineError(
                f"the work on {branch.name} is gone (worktree and local branch missing)",
                code="workspace_lost",
                retryable=False,
            )
        await self.git.run(["worktree", "prune"], self.clone_dir)
        await self._add_worktree(int(workdir.name), branch.name, LOCAL)
        return workdir

    async def remove_worktree(self, issue_number: int) -> None:
        """Drop the task's worktree (kept, cleaned, as the spare when there is none); the local
        branch stays so a re-run can resume on it."""
        directory = self.worktree_dir(issue_number)
        if not (self.clone_dir / ".git").is_dir():
            return
        async with self._clone_lock:
            if await self._spare.park(directory):
                return
            await self.git.run(
                ["worktree", "remove", "--force", str(directory)], self.clone_dir, check=False
            )
            if directory.exists():
                await trio.to_thread.run_sync(shutil.rmtree, directory)
            await self.git.run(["worktree", "prune"], self.clone_dir)

    async def discard_kept(self, kept: KeptIssue) -> None:
        """Remove a kept issue's worktree and logs (retention), holding the clone's lock."""
        async with self._clone_lock:
            await discard(kept, self.git)

    async def remove_task_files(self, issue_number: int) -> None:
        """Drop the prompt, agent and test logs of the issue's task."""
        directory = self.task_dir(issue_number)
        if directory.exists():
            await trio.to_thread.run_sync(shutil.rmtree, directory)

    async def push(self, branch: Branch, sha: str) -> None:
        """Fast-forward origin's branch to ``sha`` (a no-op when it is there already).

        Never forced: if origin's branch holds commits we do not have, someone else pushed to
        it, and that is for a human to sort out.
        """
        ref = f"refs/heads/{branch.name}"
        async with self._clone_lock:
            listed = await self._remote(["ls-remote", "origin", ref], self.clone_dir)
            if listed.stdout.split()[:1] == [sha]:
                return
            result = await self._remote(
                ["push", "--porcelain", "origin", f"{sha}:{ref}"], self.clone_dir, check=False
            )
            if result.code != 0:
                raise git_failure(["push"], result, retryable="rejected" not in result.stdout)
            await self.git.run(
                ["update-ref", f"refs/remotes/origin/{branch.name}", sha], self.clone_dir
            )

    @asynccontextmanager
    async def scratch_worktree(self, issue_number: int) -> AsyncIterator[Path]:
        """A detached, throw-away checkout of the default branch (for read-only agent runs)."""
        directory = self.root / "worktrees" / f"{issue_number}-scratch"
        origin_main = f"refs/remotes/origin/{self.default_branch}"
        async with self._clone_lock:
            await self._prepare()
            if directory.exists():
                await trio.to_thread.run_sync(shutil.rmtree, directory)
            await self.git.run(
                ["worktree", "add", "-q", "--detach", str(directory), origin_main], self.clone_dir
            )
        try:
            yield directory
        finally:
            with trio.CancelScope(shield=True):
                async with self._clone_lock:
                    await self.git.run(
                        ["worktree", "remove", "--force", str(directory)],
                        self.clone_dir,
                        check=False,
                    )
