"""The Forge port: what the workflow engine needs from GitHub, GitLab or the local forge.

Records are the engine's own (Issue, PullRequest, PRStatus, MergeResult) so a forge is a thin
translation. Every method raises EngineError with ``retryable`` set: a network blip or a locked
database is retryable, a missing issue is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, Self

from tamma_trio.step_records import Issue, MergeResult, PRStatus, PullRequest, Record, Target


class Comment(Record):
    id: int
    author: str
    body: str
    created_at: str = ""


class RepositoryInfo(Record):
    """What the workspace needs to clone a repository: the forge's own clone URL (never built
    by hand, so Enterprise hosts and test servers work) and its default branch."""

    name: str
    clone_url: str
    default_branch: str


class Forge(Protocol):
    """One repository host. ``repository`` and ``git_env`` let the workspace clone and push
    without a token ever entering a URL or an argv (``git_env`` carries the credentials)."""

    @property
    def repositories(self) -> tuple[str, ...]:
        """The allowlist: no other repository is ever read or touched."""

    async def __aenter__(self) -> Self:
        """Open: connect or create what the forge needs; EngineError when it cannot serve."""

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def aclose(self) -> None: ...

    async def repository(self, name: str) -> RepositoryInfo: ...

    async def git_env(self, repository: str) -> Mapping[str, str]:
        """Environment for git commands that reach origin (fresh: a token may have expired)."""

    async def author_may_command(self, repository: str, login: str) -> bool:
        """Whether ``login`` may give the bot commands on ``repository`` (checked live)."""

    async def get_issue(self, repository: str, number: int) -> Issue: ...

    async def list_comments(self, target: Target) -> list[Comment]: ...

    async def comment(self, target: Target, body: str, author: str) -> None: ...

    async def add_labels(self, target: Target, labels: tuple[str, ...]) -> None: ...

    async def remove_label(self, target: Target, label: str) -> None: ...

    async def assign(self, target: Target, login: str) -> None: ...

    async def close_issue(self, target: Target) -> None: ...

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
