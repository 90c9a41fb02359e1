"""The engine's git work: a clone per repository and one worktree per task.

Layout under ``root`` (one directory per repository):

    repo/               the clone of origin, fetched before each task; nobody edits it
    worktrees/<issue>/  the task's worktree on branch tamma/<issue>-<slug>
    tasks/<issue>/      prompt, agent and test logs (kept after the task, they are capped)

The engine commits and pushes; the agent only edits files. A branch is *ours* when it exists in our
clone (only the engine creates branches there) or when its tip on origin was committed by the
bot, so a restarted task resumes on its branch instead of starting a second one.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from tamma_trio.engine.base import Branch, ChangedFile
from tamma_trio.engine.git import Git, git_failure
from tamma_trio.errors import EngineError

BRANCH_PREFIX = "tamma/"
MAX_SUFFIX = 9
COMMIT_TRAILER = "Tamma-Issue"
LOCAL = ""  # start point meaning "our local branch already exists"


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


def slugify(title: str, limit: int = 40) -> str:
    """Branch-safe slug of an issue title ("Fix: the API!" -> "fix-the-api")."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:limit].rstrip("-") or "issue"


class Workspace:
    def __init__(
        self,
        root: Path,
        *,
        origin_url: str,
        repository: str,
        default_branch: str,
        identity: Identity,
        git: Git,
    ) -> None:
        self.root = root
        self.clone_dir = root / "repo"
        self.origin_url = origin_url
        self.repository = repository
        self.default_branch = default_branch
        self.identity = identity
        self.git = git

    def worktree_dir(self, issue_number: int) -> Path:
        return self.root / "worktrees" / str(issue_number)

    def task_dir(self, issue_number: int) -> Path:
        return self.root / "tasks" / str(issue_number)

    # --- the clone ------------------------------------------------------------------------
    async def prepare(self) -> None:
        """Clone origin once, then fetch it, so each task starts from origin's current state."""
        if not (self.clone_dir / ".git").is_dir():
            await self._clone()
        await self.git.run(["fetch", "--prune", "origin"], self.clone_dir, remote=True)
        await self.git.run(["worktree", "prune"], self.clone_dir)

    async def _clone(self) -> None:
        if self.clone_dir.exists():
            await trio.to_thread.run_sync(shutil.rmtree, self.clone_dir)
        self.clone_dir.parent.mkdir(parents=True, exist_ok=True)
        await self.git.run(
            ["clone", "--no-checkout", "--origin", "origin", self.origin_url, str(self.clone_dir)],
            self.clone_dir.parent,
            remote=True,
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
        await self.prepare()
        await self.base_sha()  # a clear error when origin lacks the default branch
        existing = await self._existing_worktree_branch(issue_number)
        if existing is not None:
            return await self._branch_record(existing, issue_number)
        ours = await self._our_branch(issue_number)
        if ours is not None:  # a retitled issue keeps its branch
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
        """Drop the task's worktree; the local branch stays so a re-run can resume on it."""
        directory = self.worktree_dir(issue_number)
        if not (self.clone_dir / ".git").is_dir():
            return
        await self.git.run(
            ["worktree", "remove", "--force", str(directory)], self.clone_dir, check=False
        )
        if directory.exists():
            await trio.to_thread.run_sync(shutil.rmtree, directory)
        await self.git.run(["worktree", "prune"], self.clone_dir)

    # --- inspecting and recording the agent's work ----------------------------------------
    async def head(self, workdir: Path) -> str:
        return await self.git.output(["rev-parse", "HEAD"], workdir)

    async def is_dirty(self, workdir: Path) -> bool:
        status = await self.git.output(["status", "--porcelain", "--untracked-files=all"], workdir)
        return bool(status)

    async def discard_changes(self, workdir: Path) -> None:
        """Throw away a half-done edit (an interrupted agent run) before running it again."""
        await self.git.run(["reset", "--hard", "-q"], workdir)
        await self.git.run(["clean", "-fdq"], workdir)

    async def head_is_our_implementation(self, branch: Branch, issue_number: int) -> bool:
        """True when HEAD is a commit the engine made for this issue on top of the base."""
        workdir = Path(branch.workdir)
        if await self.head(workdir) == branch.base_sha:
            return False
        body = await self.git.output(["log", "-1", "--format=%ae%n%B"], workdir)
        email, _, message = body.partition("\n")
        return email == self.identity.email and f"{COMMIT_TRAILER}: #{issue_number}" in message

    async def verify_branch(self, branch: Branch) -> None:
        """Refuse work where the agent switched branch or rewrote the history below it."""
        workdir = Path(branch.workdir)
        current = await self.git.run(
            ["symbolic-ref", "--short", "-q", "HEAD"], workdir, check=False
        )
        head = current.stdout.strip() or "detached"
        if head != branch.name:
            raise EngineError(
                f"the agent left branch {branch.name} (HEAD is {head})",
                code="agent_switched_branch",
                retryable=False,
            )
        if not await self.git.succeeds(
            ["merge-base", "--is-ancestor", branch.base_sha, "HEAD"], workdir
        ):
            raise EngineError(
                f"the agent rewrote history below {branch.name}",
                code="agent_rewrote_base",
                retryable=False,
            )

    async def commit_all(self, workdir: Path, subject: str, issue_number: int) -> bool:
        """Commit everything the agent left (as the bot); False when there was nothing."""
        await self.git.run(["add", "-A"], workdir)
        if await self.git.succeeds(["diff", "--cached", "--quiet"], workdir):
            return False
        message = f"{subject}\n\n{COMMIT_TRAILER}: #{issue_number}\n"
        await self.git.run(["commit", "--no-verify", "-q", "-m", message], workdir)
        return True

    async def diff_stats(self, workdir: Path, base_sha: str) -> tuple[ChangedFile, ...]:
        """Files changed between the base and HEAD, with git's status letter and line counts."""
        statuses = await self.git.output(
            ["diff", "--no-renames", "--name-status", "-z", base_sha, "HEAD"], workdir
        )
        numstat = await self.git.output(
            ["diff", "--no-renames", "--numstat", "-z", base_sha, "HEAD"], workdir
        )
        counts = _parse_numstat(numstat)
        fields = [field for field in statuses.split("\0") if field]
        return tuple(
            ChangedFile(
                path=path,
                status=letter,
                added=counts.get(path, (0, 0))[0],
                removed=counts.get(path, (0, 0))[1],
            )
            for letter, path in zip(fields[0::2], fields[1::2], strict=True)
        )

    async def squash_to(self, workdir: Path, start: str) -> None:
        """Fold commits the agent made itself back into the worktree, for the engine to commit."""
        if await self.head(workdir) != start:
            await self.git.run(["reset", "--soft", "-q", start], workdir)

    async def push(self, branch: Branch, sha: str) -> None:
        """Fast-forward origin's branch to ``sha`` (a no-op when it is there already).

        Never forced: if origin's branch holds commits we do not have, someone else pushed to
        it, and that is for a human to sort out.
        """
        tracking = f"refs/remotes/origin/{branch.name}"
        await self.git.run(
            ["fetch", "-q", "origin", f"+refs/heads/{branch.name}:{tracking}"],
            self.clone_dir,
            check=False,
            remote=True,
        )
        seen = await self.git.run(
            ["rev-parse", "--verify", "--quiet", tracking], self.clone_dir, check=False
        )
        if seen.stdout.strip() == sha:
            return
        result = await self.git.run(
            ["push", "--porcelain", "origin", f"{sha}:refs/heads/{branch.name}"],
            self.clone_dir,
            check=False,
            remote=True,
        )
        if result.code != 0:
            raise git_failure(["push"], result, retryable="rejected" not in result.stdout)
        await self.git.run(["update-ref", tracking, sha], self.clone_dir)

    @asynccontextmanager
    async def scratch_worktree(self, issue_number: int) -> AsyncIterator[Path]:
        """A detached, throw-away checkout of the default branch (for read-only agent runs)."""
        await self.prepare()
        directory = self.root / "worktrees" / f"{issue_number}-scratch"
        if directory.exists():
            await trio.to_thread.run_sync(shutil.rmtree, directory)
        origin_main = f"refs/remotes/origin/{self.default_branch}"
        await self.git.run(
            ["worktree", "add", "-q", "--detach", str(directory), origin_main], self.clone_dir
        )
        try:
            yield directory
        finally:
            with trio.CancelScope(shield=True):
                await self.git.run(
                    ["worktree", "remove", "--force", str(directory)], self.clone_dir, check=False
                )


def _parse_numstat(text: str) -> dict[str, tuple[int, int]]:
    """``git diff --numstat -z``: "added\\tremoved\\tpath\\0"; binary files count as 0 lines."""
    counts: dict[str, tuple[int, int]] = {}
    for record in text.split("\0"):
        parts = record.split("\t", 2)
        if len(parts) == 3:
            added, removed, path = parts
            counts[path] = (
                int(added) if added.isdigit() else 0,
                int(removed) if removed.isdigit() else 0,
            )
    return counts
