"""The Forge port: what the workflow engine needs from GitHub, GitLab or the local forge.

Records are the engine's own (Issue, PullRequest, PRStatus, MergeResult) so a forge is a thin
translation. Every method raises EngineError with ``retryable`` set: a network blip or a locked
database is retryable, a missing issue is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from tamma_trio.engine.base import Issue, MergeResult, PRStatus, PullRequest, Record, Target


class Comment(Record):
    id: int
    author: str
    body: str
    created_at: str = ""


class Forge(Protocol):
    """One repository host. ``origin_url`` and ``git_env`` let the workspace clone and push
    without a token ever entering a URL (``git_env`` carries an askpass setup, if any)."""

    async def open(self) -> None:
        """Connect or create what the forge needs; EngineError when it cannot serve."""

    async def aclose(self) -> None: ...

    def origin_url(self, repository: str) -> str: ...

    def git_env(self, repository: str) -> Mapping[str, str]: ...

    async def get_issue(self, repository: str, number: int) -> Issue: ...

    async def list_comments(self, target: Target) -> list[Comment]: ...

    async def comment(self, target: Target, body: str, author: str) -> None: ...

    async def add_labels(self, target: Target, labels: tuple[str, ...]) -> None: ...

    async def remove_label(self, target: Target, label: str) -> None: ...

    async def assign(self, target: Target, login: str) -> None: ...

    async def close_issue(self, target: Target) -> None: ...

    async def find_pull_request(self, repository: str, head_branch: str) -> PullRequest | None:
        """The open pull request from ``head_branch``, so creating one stays idempotent."""

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
        """Find the open pull request for ``head_branch`` or create it."""

    async def get_pull_request(self, repository: str, number: int) -> PullRequest: ...

    async def pull_request_status(self, repository: str, number: int) -> PRStatus:
        """One poll: state, mergeable (None while unknown), CI on the head sha, approvals."""

    async def merge_pull_request(
        self, repository: str, number: int, expected_sha: str, message: str
    ) -> MergeResult:
        """Merge only if the head is still ``expected_sha``; a moved head is merged=False."""

    async def delete_branch(self, repository: str, branch: str) -> None: ...

    async def author_may_command(self, repository: str, login: str) -> bool:
        """Whether ``login`` may command the bot on ``repository`` (the forge's live answer)."""
