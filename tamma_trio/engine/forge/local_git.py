"""The git side of the local forge: branch heads, mergeability, CI runs and merge commits in
the bare repository that acts as origin.

Merging needs no worktree: ``git merge-tree --write-tree`` computes the merged tree (and says
whether it conflicts), ``git commit-tree`` makes a real two-parent merge commit, and
``git update-ref <ref> <new> <old>`` moves the default branch only if nobody moved it since we
read it, so a concurrent push can never be overwritten.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import trio

from tamma_trio.engine.forge.local_schema import CheckRow
from tamma_trio.engine.git import Git, minimal_env
from tamma_trio.engine.limits import RunGuard
from tamma_trio.engine.process import run_in_group
from tamma_trio.errors import EngineError


@dataclass(frozen=True)
class CiSettings:
    command: tuple[str, ...]
    timeout: float
    scratch_dir: Path
    log_max_bytes: int = 1_000_000
    guard: RunGuard | None = None


class BareRepository:
    def __init__(self, path: Path, default_branch: str, git: Git) -> None:
        self.path = path
        self.default_branch = default_branch
        self.git = git

    async def check(self) -> None:
        """EngineError (not retryable) unless ``path`` is a bare repository with the branch."""
        bare = (
            self.path.is_dir()
            and (
                await self.git.run(["rev-parse", "--is-bare-repository"], self.path, check=False)
            ).stdout.strip()
            == "true"
        )
        if not bare:
            raise EngineError(
                f"local forge origin {self.path} is not a bare git repository "
                "(create one with `tamma-trio forge init`)",
                code="origin_missing",
                retryable=False,
            )

    async def branch_sha(self, branch: str) -> str | None:
        result = await self.git.run(
            ["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
            self.path,
            check=False,
        )
        return result.stdout.strip() if result.code == 0 else None

    async def merged_tree(self, head_sha: str) -> str | None:
        """The tree of default-branch + head, or None when they conflict."""
        result = await self.git.run(
            ["merge-tree", "--write-tree", "--no-messages", self.default_branch, head_sha],
            self.path,
            check=False,
        )
        if result.code == 0:
            return result.stdout.split()[0]
        if result.code == 1:
            return None
        raise EngineError(
            f"git merge-tree failed: {result.stderr.strip()[-300:]}", code="git_failed"
        )

    async def merge(self, head_sha: str, message: str, name: str, email: str) -> str | None:
        """A merge commit of ``head_sha`` into the default branch; None if they conflict."""
        base_sha = await self.branch_sha(self.default_branch)
        tree = await self.merged_tree(head_sha)
        if base_sha is None or tree is None:
            return None
        identity = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        commit = await self.git.run(
            ["commit-tree", tree, "-p", base_sha, "-p", head_sha, "-m", message],
            self.path,
            env=identity,
        )
        merge_sha = commit.stdout.strip()
        ref = f"refs/heads/{self.default_branch}"
        moved = await self.git.run(["update-ref", ref, merge_sha, base_sha], self.path, check=False)
        if moved.code != 0:
            raise EngineError(
                f"{self.default_branch} moved while merging; try again", code="merge_race"
            )
        return merge_sha

    async def delete_branch(self, branch: str) -> None:
        await self.git.run(["update-ref", "-d", f"refs/heads/{branch}"], self.path, check=False)

    async def run_ci(self, sha: str, settings: CiSettings) -> CheckRow:
        """Run the test command on ``sha`` in a scratch worktree of the bare repository."""
        scratch = settings.scratch_dir / sha[:16]
        if scratch.exists():
            await trio.to_thread.run_sync(shutil.rmtree, scratch)
        scratch.parent.mkdir(parents=True, exist_ok=True)
        await self.git.run(["worktree", "prune"], self.path)
        await self.git.run(["worktree", "add", "-q", "--detach", str(scratch), sha], self.path)
        try:
            outcome = await run_in_group(
                settings.command,
                cwd=scratch,
                env=minimal_env(),
                timeout=settings.timeout,
                log_path=settings.scratch_dir / f"{sha[:16]}.log",
                log_max_bytes=settings.log_max_bytes,
                guard=settings.guard,
            )
        finally:
            with trio.CancelScope(shield=True):
                await self.git.run(
                    ["worktree", "remove", "--force", str(scratch)], self.path, check=False
                )
        passed = outcome.exit_code == 0 and not outcome.timed_out and not outcome.limit_exceeded
        note = f"\n[timed out after {settings.timeout:g} s]" if outcome.timed_out else ""
        if outcome.limit_exceeded and settings.guard is not None:
            note = f"\n[{settings.guard.message(outcome.limit_exceeded)}]"
        return CheckRow(
            state="success" if passed else "failure",
            exit_code=outcome.exit_code,
            duration=round(outcome.duration, 3),
            output_tail=outcome.tail[-2000:] + note,
        )
