"""GitHubForge: the Forge port on GitHub (or GitHub Enterprise) for an allowlist of repositories.

At open it proves the setup before the daemon takes work: the credentials are accepted, they
belong to ``bot_name`` (the token's user, or the App's ``<slug>[bot]``), and every listed
repository answers, which also gives its ``clone_url`` and default branch. Clones authenticate
with the same credentials through the environment (see git_auth).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

import trio

from tamma_trio.engine.forge.base import Comment, RepositoryInfo
from tamma_trio.engine.forge.github.client import Credentials, GitHubClient
from tamma_trio.engine.forge.github.pulls import MergeSettings, PullRequestOps
from tamma_trio.engine.forge.github.verdicts import role_of, role_reaches
from tamma_trio.engine.forge.http_util import Sleep, Wall
from tamma_trio.engine.git_auth import basic_auth_env
from tamma_trio.errors import EngineError
from tamma_trio.resource import Resource
from tamma_trio.step_records import Issue, Target

GIT_USER = "x-access-token"
PERMISSION_TTL = 300.0  # a collaborator's role is asked again after five minutes
LABEL_COLOR = "ededed"


class GitCredentials(Credentials, Protocol):
    kind: str

    async def git_token(self, repository: str) -> str: ...


class GitHubForge(PullRequestOps, Resource):
    def __init__(
        self,
        client: GitHubClient,
        credentials: GitCredentials,
        *,
        repositories: tuple[str, ...],
        bot_name: str,
        merging: MergeSettings,
        command_permission: str = "write",
        wall: Wall = time.time,
        sleep: Sleep = trio.sleep,
    ) -> None:
        self.client = client
        self.credentials = credentials
        self._repositories = repositories
        self.bot_name = bot_name
        self.merging = merging
        self.command_permission = command_permission
        self.wall = wall
        self.sleep = sleep
        self._first_seen: dict[str, float] = {}
        self._info: dict[str, RepositoryInfo] = {}
        self._labels: dict[str, set[str]] = {}
        self._roles: dict[tuple[str, str], tuple[str, float]] = {}

    @property
    def repositories(self) -> tuple[str, ...]:
        return self._repositories

    # --- start and stop -----------------------------------------------------------------------
    async def _open(self) -> None:
        """Refuse to start unless the credentials are the bot's and every repository answers."""
        login = await self._login()
        if login.lower() != self.bot_name.lower():
            raise EngineError(
                f"[service] bot_name is {self.bot_name!r} but the GitHub {self.credentials.kind} "
                f"acts as {login!r}; set bot_name = {login!r}",
                code="bot_name_mismatch",
                retryable=False,
            )
        for name in self._repositories:
            await self.repository(name)

    async def _login(self) -> str:
        if self.credentials.kind == "app":
            app = await self.client.get("/app", as_app=True)
            return f"{app['slug']}[bot]"
        return str((await self.client.get("/user"))["login"])

    async def aclose(self) -> None:
        await self.client.aclose()

    async def repository(self, name: str) -> RepositoryInfo:
        known = self._info.get(name)
        if known is None:
            data = await self.client.get(f"/repos/{name}", repository=name)
            known = self._info[name] = RepositoryInfo(
                name=name,
                clone_url=str(data["clone_url"]),
                default_branch=str(data["default_branch"]),
            )
        return known

    async def git_env(self, repository: str) -> Mapping[str, str]:
        info = await self.repository(repository)
        token = await self.credentials.git_token(repository)
        return basic_auth_env(info.clone_url, GIT_USER, token)

    async def author_may_command(self, repository: str, login: str) -> bool:
        """The author's role on the repository must reach ``command_permission`` (cached)."""
        key = (repository, login.lower())
        cached = self._roles.get(key)
        if cached is None or self.wall() - cached[1] >= PERMISSION_TTL:
            reply = await self.client.call(
                "GET",
                f"/repos/{repository}/collaborators/{quote(login)}/permission",
                repository=repository,
                allow=(404,),  # not a collaborator at all
            )
            role = role_of(reply.data) if reply.status == 200 else "none"
            cached = self._roles[key] = (role, self.wall())
        return role_reaches(cached[0], self.command_permission)

    # --- issues -------------------------------------------------------------------------------
    def _issue_path(self, target: Target, tail: str = "") -> str:
        return f"/repos/{target.repository}/issues/{target.number}{tail}"

    async def get_issue(self, repository: str, number: int) -> Issue:
        target = Target(repository=repository, number=number)
        data = await self.client.get(self._issue_path(target), repository=repository)
        if "pull_request" in data:
            raise EngineError(
                f"{repository}#{number} is a pull request, not an issue",
                code="not_an_issue",
                retryable=False,
            )
        return Issue(
            repository=repository,
            number=number,
            title=str(data["title"]),
            body=str(data.get("body") or ""),
            labels=_names(data.get("labels", ()), "name"),
            assignees=_names(data.get("assignees", ()), "login"),
            state="open" if data["state"] == "open" else "closed",
            url=str(data.get("html_url", "")),
            author=str((data.get("user") or {}).get("login", "")),
        )

    async def list_comments(self, target: Target) -> list[Comment]:
        items = await self.client.get_all(
            self._issue_path(target, "/comments"), repository=target.repository
        )
        return [
            Comment(
                id=int(item["id"]),
                author=str((item.get("user") or {}).get("login", "")),
                body=str(item.get("body") or ""),
                created_at=str(item.get("created_at", "")),
            )
            for item in items
        ]

    async def comment(self, target: Target, body: str, author: str) -> None:
        path = self._issue_path(target, "/comments")
        await self.client.call("POST", path, repository=target.repository, body={"body": body})

    async def add_labels(self, target: Target, labels: tuple[str, ...]) -> None:
        await self.add_labels_to(target.repository, target.number, labels)

    async def add_labels_to(self, repository: str, number: int, labels: tuple[str, ...]) -> None:
        """Create labels the repository lacks (422: it has them), then put them on the item."""
        known = self._labels.setdefault(repository, set())
        for label in labels:
            if label not in known:
                await self.client.call(
                    "POST",
                    f"/repos/{repository}/labels",
                    repository=repository,
                    body={"name": label, "color": LABEL_COLOR},
                    allow=(422,),
                )
                known.add(label)
        target = Target(repository=repository, number=number)
        await self.client.call(
            "POST",
            self._issue_path(target, "/labels"),
            repository=repository,
            body={"labels": list(labels)},
        )

    async def remove_label(self, target: Target, label: str) -> None:
        path = self._issue_path(target, f"/labels/{quote(label, safe='')}")
        await self.client.call("DELETE", path, repository=target.repository, allow=(404,))

    async def assign(self, target: Target, login: str) -> None:
        path = self._issue_path(target, "/assignees")
        body = {"assignees": [login]}
        await self.client.call("POST", path, repository=target.repository, body=body)

    async def close_issue(self, target: Target) -> None:
        body = {"state": "closed", "state_reason": "completed"}
        path = self._issue_path(target)
        await self.client.call("PATCH", path, repository=target.repository, body=body)


def _names(items: Any, key: str) -> tuple[str, ...]:
    return tuple(str(item[key]) for item in items or ())
