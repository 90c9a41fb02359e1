"""GitHub's REST API v3 over httpx (which runs on trio), decoded by gidgethub's sans-I/O core.

gidgethub builds the headers and decodes bodies, errors and ``Link`` pagination; the I/O loop
around it (retries, rate-limit waits, serialised writes) is rest_client's. What is GitHub's:

- a rate limit is a 429, or a 403 with ``x-ratelimit-remaining: 0`` or a secondary-limit
  message; its wait is ``retry-after``, else until ``x-ratelimit-reset``, else a minute;
- a 401 drops a cached App token and asks once more (it may have expired early);
- 401, 403 and 404 are not retryable and name the repository, never the token.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import trio
from gidgethub import HTTPException, sansio

from tamma_trio.engine.forge.http_util import Sleep, Wall
from tamma_trio.engine.forge.rest_client import Answer, RestClient
from tamma_trio.errors import EngineError
from tamma_trio.status import ForgeStats

API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"
REQUESTER = "tamma-trio"
SECONDARY_DEFAULT_WAIT = 60.0  # GitHub: "otherwise, wait for at least one minute"


class Credentials(Protocol):
    """Who the client is: a token, or a GitHub App (a JWT, or an installation's token)."""

    async def authorization(self, repository: str | None, *, as_app: bool) -> str:
        """The Authorization header value for a request about ``repository``."""

    def forget(self, repository: str | None) -> bool:
        """Drop a cached token GitHub refused; True when asking again can help."""


@dataclass(frozen=True)
class Reply:
    status: int
    data: Any
    next_url: str | None
    headers: Mapping[str, str]


def rate_limit_wait(status: int, headers: Mapping[str, str], data: Any, now: float) -> float | None:
    """Seconds to wait before GitHub will answer again, or None when this is no rate limit."""
    if status not in (403, 429):
        return None
    retry_after = headers.get("retry-after", "")
    if retry_after.isdigit():
        return float(retry_after)
    reset = headers.get("x-ratelimit-reset", "")
    if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(float(reset) - now, 0.0) + 1.0  # the reset second itself may still refuse
    message = data.get("message", "") if isinstance(data, Mapping) else ""
    if status == 429 or "secondary rate limit" in str(message).lower():
        return SECONDARY_DEFAULT_WAIT
    return None


class GitHubClient(RestClient):
    host = "GitHub"
    forge = "github"

    def __init__(
        self,
        api_url: str,
        credentials: Credentials,
        *,
        stats: ForgeStats | None = None,
        timeout: float = 30,
        max_wait: float = 60,
        wall: Wall = time.time,
        sleep: Sleep = trio.sleep,
    ) -> None:
        super().__init__(
            api_url, stats=stats, timeout=timeout, max_wait=max_wait, wall=wall, sleep=sleep
        )
        self.credentials = credentials

    async def call(
        self,
        method: str,
        path: str,
        *,
        repository: str | None = None,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        allow: Sequence[int] = (),
        as_app: bool = False,
    ) -> Reply:
        """One API call; a status in ``allow`` is returned instead of raised."""
        url = self.url_of(path)
        subject = _subject(repository, url)

        async def headers() -> dict[str, str]:
            sent = sansio.create_headers(REQUESTER, accept=ACCEPT)
            sent["authorization"] = await self.credentials.authorization(repository, as_app=as_app)
            sent["x-github-api-version"] = API_VERSION
            return sent

        async with self.serialised(method, repository):
            answer = await self.request(
                method,
                url,
                subject=subject,
                headers=headers,
                body=body,
                params=params,
                refresh=lambda: self.credentials.forget(repository),  # an App token expired early
            )
        return _reply(answer, subject, allow)

    async def get(self, path: str, *, repository: str | None = None, **kw: Any) -> Any:
        return (await self.call("GET", path, repository=repository, **kw)).data

    async def get_all(
        self,
        path: str,
        *,
        repository: str | None = None,
        params: Mapping[str, str] | None = None,
        key: str | None = None,
    ) -> list[Any]:
        """Every item of a paginated list, following ``Link: rel="next"``."""
        items: list[Any] = []
        next_url: str | None = path
        query: Mapping[str, str] | None = {"per_page": "100", **(params or {})}
        while next_url is not None:
            reply = await self.call("GET", next_url, repository=repository, params=query)
            page = reply.data[key] if key is not None else reply.data
            items.extend(page)
            next_url, query = reply.next_url, None  # the next link carries the query
        return items

    def rate_limit_wait(
        self, status: int, headers: Mapping[str, str], data: Any, now: float
    ) -> float | None:
        return rate_limit_wait(status, headers, data, now)

    def count(self, response: httpx.Response) -> None:
        super().count(response)
        remaining = response.headers.get("x-ratelimit-remaining", "")
        if remaining.isdigit():
            resource = response.headers.get("x-ratelimit-resource", "core")
            self.stats.budget(self.forge, resource, int(remaining))


def _subject(repository: str | None, url: str) -> str:
    """What an error names: the repository, else the API path (``/user``, ``/app``), which
    says whose credentials were meant and never holds a secret."""
    return repository or urlsplit(url).path


def _reply(answer: Answer, subject: str, allow: Sequence[int]) -> Reply:
    if answer.status in allow:
        return Reply(answer.status, answer.data, None, answer.headers)
    try:
        decoded, _limit, next_url = sansio.decipher_response(
            answer.status, answer.headers, answer.content
        )
    except HTTPException as exc:
        raise _http_error(answer.status, subject, exc) from None
    return Reply(answer.status, decoded, next_url, answer.headers)


def _http_error(status: int, where: str, exc: HTTPException) -> EngineError:
    if status == 401:
        return EngineError(
            f"GitHub refused the credentials (401) for {where}",
            code="unauthorized",
            retryable=False,
        )
    if status == 404:
        return EngineError(
            f"GitHub has no such resource in {where}, or the credentials cannot see it (404)",
            code="not_found",
            retryable=False,
        )
    return EngineError(
        f"GitHub answered {status} for {where}: {str(exc)[:200]}",
        code=f"github_{status}",
        retryable=status >= 500,
    )
