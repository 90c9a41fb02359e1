"""Git inside one task's worktree: what the agent did, and the engine's commit of it.

The engine commits, never the agent: commits the agent made anyway are folded back
(``squash_to``) and recommitted as the bot with a ``Tamma-Issue: #N`` trailer, which is also how
a resumed task recognises that its implementation step already finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tamma_trio.engine.git import Git
from tamma_trio.errors import EngineError
from tamma_trio.step_records import Branch, ChangedFile

COMMIT_TRAILER = "Tamma-Issue"


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


class WorktreeOps:
    """Operations on a worktree directory; the Workspace adds the clone and the branches."""

    def __init__(self, git: Git, identity: Identity) -> None:
        self.git = git
        self.identity = identity

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
