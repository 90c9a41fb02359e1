"""Who the daemon is on GitHub: a token, or a GitHub App acting through its installations.

An App signs a short JWT (RS256, gidgethub.apps.get_jwt over PyJWT) to ask, per repository, for
its installation and then for an installation token. Tokens live about an hour; each is cached
until ``REFRESH_MARGIN`` before its ``expires_at`` and then replaced, so a task that runs past
an expiry keeps working. A token GitHub refuses early (401) is dropped and fetched again once.
Tokens are only ever returned for an Authorization header or a git environment; nothing here
logs or formats one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import trio
from gidgethub.apps import get_jwt

from tamma_trio.errors import EngineError

if TYPE_CHECKING:
    from tamma_trio.engine.forge.github.client import GitHubClient, Wall

REFRESH_MARGIN = 300.0  # replace an installation token this long before it expires
JWT_LIFETIME = 540  # GitHub allows 10 minutes; get_jwt backdates the issue time for skew
JWT_REUSE = 420.0
GIT_USER = "x-access-token"  # the user name git sends with a token as password


class TokenCredentials:
    """A personal access token (classic or fine-grained): the same header for every call."""

    kind = "token"

    def __init__(self, token: str) -> None:
        self._token = token

    async def authorization(self, repository: str | None, *, as_app: bool) -> str:
        return f"token {self._token}"

    def forget(self, repository: str | None) -> bool:
        return False  # the same token again would be refused again

    async def git_token(self, repository: str) -> str:
        return self._token


@dataclass
class _Installation:
    token: str = ""
    expires_at: float = 0.0


class AppCredentials:
    """A GitHub App: a JWT for /app calls, an installation token for each repository's calls."""

    kind = "app"

    def __init__(self, app_id: int, private_key: bytes, *, wall: Wall = time.time) -> None:
        self.app_id = app_id
        self._key = private_key
        self.wall = wall
        self.client: GitHubClient | None = None  # bound by the builder (it needs us first)
        self._jwt = ("", 0.0)
        self._installation_of: dict[str, int] = {}
        self._installations: dict[int, _Installation] = {}
        self._lock = trio.Lock()

    async def authorization(self, repository: str | None, *, as_app: bool) -> str:
        if as_app or repository is None:
            return f"Bearer {self._app_jwt()}"
        return f"token {await self.git_token(repository)}"

    def forget(self, repository: str | None) -> bool:
        installation = self._installation_of.get(repository or "")
        cached = self._installations.pop(installation, None) if installation else None
        return cached is not None

    async def git_token(self, repository: str) -> str:
        """The repository's installation token, fetched or refreshed when near its expiry."""
        async with self._lock:  # one refresh at a time, however many tasks need the token
            installation = await self._installation(repository)
            cached = self._installations.get(installation)
            if cached is None or cached.expires_at - self.wall() <= REFRESH_MARGIN:
                cached = self._installations[installation] = await self._fresh_token(
                    installation, repository
                )
            return cached.token

    def _app_jwt(self) -> str:
        token, made_at = self._jwt
        if not token or self.wall() - made_at >= JWT_REUSE:
            token = get_jwt(app_id=str(self.app_id), private_key=self._key, expiration=JWT_LIFETIME)
            self._jwt = (token, self.wall())
        return token

    async def _installation(self, repository: str) -> int:
        known = self._installation_of.get(repository)
        if known is None:
            reply = await self._bound().get(
                f"/repos/{repository}/installation", repository=repository, as_app=True
            )
            known = self._installation_of[repository] = int(reply["id"])
        return known

    async def _fresh_token(self, installation: int, repository: str) -> _Installation:
        reply = await self._bound().call(
            "POST",
            f"/app/installations/{installation}/access_tokens",
            repository=None,
            as_app=True,
        )
        try:
            expires = datetime.fromisoformat(str(reply.data["expires_at"])).timestamp()
            return _Installation(token=str(reply.data["token"]), expires_at=expires)
        except (KeyError, TypeError, ValueError):
            raise EngineError(
                f"GitHub sent no usable installation token for {repository}",
                code="github_bad_token_reply",
            ) from None

    def _bound(self) -> GitHubClient:
        if self.client is None:
            raise EngineError("the GitHub App credentials have no client", code="internal_error")
        return self.client
