"""GitLabForge: the Forge port on GitLab (gitlab.com or self-managed) for an allowlist of projects.

At open it proves the setup before the daemon takes work: the token is accepted, its user is
``bot_name`` (GET /user), and every listed project answers, which also gives its
``http_url_to_repo`` and default branch. Issues are addressed by iid (the number people see).
Clones authenticate with the token through the environment only (see git_auth).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import trio

from tamma_trio.engine.forge.base import Comment, RepositoryInfo
from tamma_trio.engine.forge.gitlab.client import GitLabClient, project_path
from tamma_trio.engine.forge.gitlab.merge_requests import MergeRequestOps
from tamma_trio.engine.forge.gitlab.verdicts import access_reaches
from tamma_trio.engine.forge.http_util import Sleep, Wall
from tamma_trio.engine.forge.merging import MergeSettings
from tamma_trio.engine.git_auth import basic_auth_env
from tamma_trio.errors import EngineError
from tamma_trio.resource import Resource
from tamma_trio.step_records import Issue, Target

GIT_USER = "oauth2"  # GitLab's documented user name for a token over HTTPS
ACCESS_TTL = 300.0  # a member's access level is asked again after five minutes
LABEL_COLOR = "#ededed"


class GitLabForge(MergeRequestOps, Resource):
    def __init__(
        self,
        client: GitLabClient,
        token: str,
        *,
        repositories: tuple[str, ...],
        bot_name: str,
        merging: MergeSettings,
        command_access_level: int = 30,
        wall: Wall = time.time,
        sleep: Sleep = trio.sleep,
    ) -> None:
        self.client = client
        self._token = token
        self._repositories = repositories
        self.bot_name = bot_name
        self.merging = merging
        self.command_access_level = command_access_level
        self.wall = wall
        self.sleep = sleep
        self._first_seen: dict[str, float] = {}
        self._info: dict[str, RepositoryInfo] = {}
        self._labels: dict[str, set[str]] = {}
        self._user_ids: dict[str, int | None] = {}
        self._access: dict[tuple[str, str], tuple[bool, float]] = {}

    @property
    def repositories(self) -> tuple[str, ...]:
        return self._repositories

    async def _open(self) -> None:
        """Refuse to start unless the token is the bot's and every project answers."""
        username = str((await self.client.get("/user"))["username"])
        if username.lower() != self.bot_name.lower():
            raise EngineError(
                f"[service] bot_name is {self.bot_name!r} but the GitLab token belongs to "
                f"{username!r}; set bot_name = {username!r}",
                code="bot_name_mismatch",
                retryable=False,
            )
        for name in self._repositories:
            await self.repository(name)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def repository(self, name: str) -> RepositoryInfo:
        known = self._info.get(name)
        if known is None:
            data = await self.client.get(project_path(name), project=name)
            known = self._info[name] = RepositoryInfo(
                name=name,
                clone_url=str(data["http_url_to_repo"]),
                default_branch=str(data.get("default_branch") or "main"),
            )
        return known

    async def git_env(self, repository: str) -> Mapping[str, str]:
        info = await self.repository(repository)
        return basic_auth_env(info.clone_url, GIT_USER, self._token)

    async def user_id(self, username: str) -> int | None:
        key = username.lower()
        if key not in self._user_ids:
            found = await self.client.get("/users", params={"username": username})
            self._user_ids[key] = int(found[0]["id"]) if found else None
        return self._user_ids[key]

    async def author_may_command(self, repository: str, login: str) -> bool:
        """The author's access level (inherited included) must reach ``command_access_level``."""
        key = (repository, login.lower())
        cached = self._access.get(key)
        if cached is None or self.wall() - cached[1] >= ACCESS_TTL:
            member = await self._member(repository, login)
            cached = self._access[key] = (
                access_reaches(member, self.command_access_level),
                self.wall(),
            )
        return cached[0]

    async def _member(self, repository: str, login: str) -> Mapping[str, Any] | None:
        user = await self.user_id(login)
        if user is None:
            return None
        reply = await self.client.call(
            "GET",
            project_path(repository, f"/members/all/{user}"),
            project=repository,
            allow=(404,),  # not a member at all
        )
        return reply.data if reply.status == 200 else None

    # --- issues and merge requests: notes, labels, assignees, state -------------------------
    def _issue_path(self, target: Target, tail: str = "") -> str:
        """The issue or merge request ``target`` names: GitLab numbers the two apart, so issue
        #3 and merge request !3 are different objects with different URLs."""
        collection = "merge_requests" if target.kind == "pull_request" else "issues"
        return project_path(target.repository, f"/{collection}/{target.number}{tail}")

    async def get_issue(self, repository: str, number: int) -> Issue:
        target = Target(repository=repository, number=number)
        data = await self.client.get(self._issue_path(target), project=repository)
        return Issue(
            repository=repository,
            number=number,
            title=str(data["title"]),
            body=str(data.get("description") or ""),
            labels=tuple(str(label) for label in data.get("labels") or ()),
            assignees=_usernames(data.get("assignees")),
            state="open" if data["state"] == "opened" else "closed",
            url=str(data.get("web_url", "")),
            author=str((data.get("author") or {}).get("username", "")),
        )

    async def list_comments(self, target: Target) -> list[Comment]:
        notes = await self.client.get_all(
            self._issue_path(target, "/notes"),
            project=target.repository,
            params={"sort": "asc", "order_by": "created_at"},
        )
        return [
            Comment(
                id=int(note["id"]),
                author=str((note.get("author") or {}).get("username", "")),
                body=str(note.get("body") or ""),
                created_at=str(note.get("created_at", "")),
            )
            for note in notes
            if not note.get("system")  # "added label x": GitLab's own notes are no comments
        ]

    async def comment(self, target: Target, body: str, author: str) -> None:
        path = self._issue_path(target, "/notes")
        await self.client.call("POST", path, project=target.repository, body={"body": body})

    async def ensure_labels(self, repository: str, labels: tuple[str, ...]) -> None:
        """Create labels the project lacks (409: it has them)."""
        known = self._labels.setdefault(repository, set())
        for label in labels:
            if label not in known:
                await self.client.call(
                    "POST",
                    project_path(repository, "/labels"),
                    project=repository,
                    body={"name": label, "color": LABEL_COLOR},
                    allow=(409,),
                )
                known.add(label)

    async def add_labels(self, target: Target, labels: tuple[str, ...]) -> None:
        await self.ensure_labels(target.repository, labels)
        await self._update(target, {"add_labels": ",".join(labels)})

    async def remove_label(self, target: Target, label: str) -> None:
        await self._update(target, {"remove_labels": label})

    async def assign(self, target: Target, login: str) -> None:
        user = await self.user_id(login)
        if user is None:
            raise EngineError(f"GitLab has no user {login!r}", code="no_user", retryable=False)
        data = await self.client.get(self._issue_path(target), project=target.repository)
        ids = [int(a["id"]) for a in data.get("assignees") or ()]
        await self._update(target, {"assignee_ids": sorted({*ids, user})})

    async def close_issue(self, target: Target) -> None:
        await self._update(target, {"state_event": "close"})

    async def _update(self, target: Target, body: Mapping[str, Any]) -> None:
        await self.client.call(
            "PUT", self._issue_path(target), project=target.repository, body=dict(body)
        )


def _usernames(items: Any) -> tuple[str, ...]:
    return tuple(str(item["username"]) for item in items or ())
