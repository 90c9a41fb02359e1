"""LocalForge: a forge with no network. Issues, comments, labels and pull requests are rows in
the forge's own SQLite file; a bare git repository is origin; "CI" is the configured test
command run on a pull request's head (once per head sha, the result stored as its check); merge
is a real merge commit on the bare repository's default branch.

It also plays the webhook: opening a pull request enqueues a pr_review_requested task (keyed on
the pull request, so a resumed create_pull_request never enqueues twice) when the daemon passed
an ``enqueue`` callable.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import trio

from tamma_trio.engine.forge.base import Comment, RepositoryInfo
from tamma_trio.engine.forge.local_db import ForgeDb
from tamma_trio.engine.forge.local_git import BareRepository, CiSettings
from tamma_trio.engine.forge.local_schema import CheckRow, ItemRow, PullRow
from tamma_trio.engine.git import Git
from tamma_trio.errors import EngineError
from tamma_trio.intake.local_forge import review_task
from tamma_trio.models import NewTask
from tamma_trio.resource import Resource
from tamma_trio.step_records import Issue, MergeResult, PRStatus, PullRequest, Target

T = TypeVar("T")
PrState = Literal["open", "closed", "merged"]
PR_STATES: Mapping[str, PrState] = {"open": "open", "merged": "merged"}
Enqueue = Callable[[NewTask], Awaitable[None]]
CLOSES = re.compile(r"(?im)^\s*(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s+#(\d+)\b")


class LocalForge(Resource):
    def __init__(
        self,
        *,
        database: Path,
        task_database: Path | None = None,
        origin: Path,
        default_branch: str,
        git: Git,
        ci: CiSettings,
        bot_name: str,
        bot_email: str,
        repository: str = "local/project",
        required_approvals: int = 0,
        enqueue: Enqueue | None = None,
    ) -> None:
        self.repositories = (repository,)
        self.database = database
        self.task_database = task_database  # where an older install kept the forge's rows
        self.repo = BareRepository(origin, default_branch, git)
        self.ci = ci
        self.bot_name = bot_name
        self.bot_email = bot_email
        self.required_approvals = required_approvals
        self.enqueue = enqueue
        self._db: ForgeDb | None = None
        self._limiter = trio.CapacityLimiter(1)  # one connection: serialise every call
        self._ci_lock = trio.Lock()
        self._merge_lock = trio.Lock()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)
        except Exception as exc:  # sqlite3 errors: a locked or broken file
            if isinstance(exc, EngineError):
                raise
            raise EngineError(
                f"local forge database: {exc}", code="forge_db", retryable=True
            ) from exc

    @property
    def db(self) -> ForgeDb:
        if self._db is None:
            raise EngineError("local forge is not open", code="forge_closed", retryable=True)
        return self._db

    async def _open(self) -> None:
        await self.repo.check()
        self._db = await self._call(ForgeDb, self.database, self.task_database)

    async def aclose(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await self._call(db.close)

    async def repository(self, name: str) -> RepositoryInfo:
        return RepositoryInfo(
            name=name, clone_url=str(self.repo.path), default_branch=self.repo.default_branch
        )

    async def git_env(self, repository: str) -> Mapping[str, str]:
        return {}  # a local path needs no credentials

    async def author_may_command(self, repository: str, login: str) -> bool:
        return True  # everyone with access to the forge's file may command the bot

    # --- issues ---------------------------------------------------------------------------
    async def _item(self, repository: str, number: int) -> ItemRow:
        row = await self._call(self.db.item, repository, number)
        if row is None:
            raise EngineError(
                f"{repository}#{number} does not exist", code="not_found", retryable=False
            )
        return row

    async def get_issue(self, repository: str, number: int) -> Issue:
        row = await self._item(repository, number)
        if row.kind != "issue":
            raise EngineError(
                f"{repository}#{number} is a pull request, not an issue",
                code="not_an_issue",
                retryable=False,
            )
        return Issue(
            repository=repository,
            number=number,
            title=row.title,
            body=row.body,
            labels=row.labels,
            assignees=row.assignees,
            state="open" if row.state == "open" else "closed",
            url=f"local://{repository}/issues/{number}",
            author=row.author,
        )

    async def list_comments(self, target: Target) -> list[Comment]:
        return await self._call(self.db.comments, target.repository, target.number)

    async def comment(self, target: Target, body: str, author: str) -> None:
        await self._item(target.repository, target.number)
        await self._call(self.db.add_comment, target.repository, target.number, author, body)

    async def add_labels(self, target: Target, labels: tuple[str, ...]) -> None:
        await self._item(target.repository, target.number)
        await self._call(self.db.add_labels, target.repository, target.number, labels)

    async def remove_label(self, target: Target, label: str) -> None:
        await self._call(self.db.remove_label, target.repository, target.number, label)

    async def assign(self, target: Target, login: str) -> None:
        await self._item(target.repository, target.number)
        await self._call(self.db.assign, target.repository, target.number, login)

    async def close_issue(self, target: Target) -> None:
        await self._call(self.db.set_state, target.repository, target.number, "closed")

    # --- pull requests --------------------------------------------------------------------
    async def _pull(self, repository: str, number: int) -> PullRow:
        row = await self._call(self.db.pull, repository, number)
        if row is None:
            raise EngineError(
                f"{repository}!{number} is not a pull request", code="not_found", retryable=False
            )
        return row

    async def _record(self, row: PullRow) -> PullRequest:
        """The pull request as the engine sees it; an open one follows its branch's head."""
        head = row.head_sha
        if row.item.state == "open":
            head = await self.repo.branch_sha(row.head_branch) or head
            if head != row.head_sha:
                await self._call(self.db.record_head, row.item.repository, row.item.number, head)
        state = PR_STATES.get(row.item.state, "closed")
        return PullRequest(
            repository=row.item.repository,
            number=row.item.number,
            url=f"local://{row.item.repository}/pull/{row.item.number}",
            head_branch=row.head_branch,
            head_sha=head,
            base=row.base,
            state=state,
            author=row.item.author,
            labels=row.item.labels,
        )

    async def get_pull_request(self, repository: str, number: int) -> PullRequest:
        return await self._record(await self._pull(repository, number))

    async def open_pull_request(
        self,
        repository: str,
        *,
        title: str,
        body: str,
        head_branch: str,
        base: str,
        author: str,
        labels: tuple[str, ...] = (),
    ) -> PullRequest:
        if await self.repo.branch_sha(head_branch) is None:
            raise EngineError(
                f"branch {head_branch} is not on origin; push it first",
                code="branch_missing",
                retryable=True,
            )
        number, _created = await self._call(
            lambda: self.db.open_pull(
                repository,
                title=title,
                body=body,
                head_branch=head_branch,
                base=base,
                author=author,
                labels=labels,
            )
        )
        if self.enqueue is not None:  # keyed: a second call for the same PR adds nothing
            await self.enqueue(review_task(repository, number))
        return await self.get_pull_request(repository, number)

    async def pull_request_status(self, repository: str, number: int) -> PRStatus:
        pr = await self.get_pull_request(repository, number)
        approvals, changes_requested = await self._call(self.db.review_counts, repository, number)
        if pr.state != "open":
            return PRStatus(
                state=pr.state,
                mergeable=False,
                ci_state="none",
                ci_passed=False,
                approvals=approvals,
                required_approvals=self.required_approvals,
                changes_requested=changes_requested,
                head_sha=pr.head_sha,
                reasons=(f"pull request is {pr.state}",),
            )
        mergeable = await self.repo.merged_tree(pr.head_sha) is not None
        check = await self._check(repository, pr.head_sha)
        reasons = _reasons(mergeable, check.state, approvals, self.required_approvals)
        return PRStatus(
            state="open",
            mergeable=mergeable,
            ci_state=check.state,
            ci_passed=check.state == "success",
            approvals=approvals,
            required_approvals=self.required_approvals,
            changes_requested=changes_requested,
            head_sha=pr.head_sha,
            reasons=(*reasons, *(("changes requested",) if changes_requested else ())),
        )

    async def _check(self, repository: str, sha: str) -> CheckRow:
        """The stored check for ``sha``, running CI first if this head was never tested."""
        async with self._ci_lock:
            check = await self._call(self.db.check, repository, sha)
            if check is None:
                check = await self.repo.run_ci(sha, self.ci)
                await self._call(self.db.save_check, repository, sha, check)
            return check

    async def merge_pull_request(
        self, repository: str, number: int, expected_sha: str, message: str
    ) -> MergeResult:
        async with self._merge_lock:
            row = await self._pull(repository, number)
            pr = await self._record(row)
            if pr.state != "open":
                return MergeResult(merged=False, message=f"pull request is {pr.state}")
            if pr.head_sha != expected_sha:
                return MergeResult(
                    merged=False,
                    message=f"head moved: expected {expected_sha[:12]}, is {pr.head_sha[:12]}",
                )
            merge_sha = await self.repo.merge(pr.head_sha, message, self.bot_name, self.bot_email)
            if merge_sha is None:
                return MergeResult(merged=False, message="merge conflicts with the base branch")
            closes = [int(n) for n in CLOSES.findall(row.item.body)]
            await self._call(self.db.mark_merged, repository, number, merge_sha, closes)
            return MergeResult(merged=True, sha=merge_sha, message=f"merged as {merge_sha[:12]}")

    async def delete_branch(self, repository: str, branch: str) -> None:
        await self.repo.delete_branch(branch)


def _reasons(mergeable: bool, ci_state: str, approvals: int, required: int) -> tuple[str, ...]:
    reasons = []
    if not mergeable:
        reasons.append("conflicts with the base branch")
    if ci_state != "success":
        reasons.append(f"CI is {ci_state}")
    if approvals < required:
        reasons.append(f"{approvals} of {required} required approvals")
    return tuple(reasons)
