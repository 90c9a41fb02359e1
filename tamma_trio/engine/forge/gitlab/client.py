"""GitLab's REST API v4 over httpx (which runs on trio); the loop (retries, rate-limit waits,
serialised writes) is rest_client's, shared with GitHub.

httpx is used directly rather than a GitLab library: python-gitlab is synchronous (a worker
thread per call) and gidgetlab's sans-I/O core would add a dependency for header building and
``Link`` parsing that httpx already does.

- the token travels in ``PRIVATE-TOKEN`` (personal, project and group access tokens all accept
  it) and never in a URL, a log or an error;
- a rate limit is a 429; its wait is ``Retry-After``, else until ``RateLimit-Reset``, else a
  minute;
- lists follow ``Link: rel="next"`` (else ``X-Next-Page``) to the end;
- 401, 403 and 404 are not retryable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import trio

from tamma_trio.engine.forge.http_util import Sleep, Wall
from tamma_trio.engine.forge.rest_client import RestClient
from tamma_trio.errors import EngineError
from tamma_trio.status import ForgeStats

DEFAULT_RATE_LIMIT_WAIT = 60.0
FORGE = "gitlab"


@dataclass(frozen=True)
class Reply:
    status: int
    data: Any
    headers: Mapping[str, str]
    next_url: str | None


def project_path(project: str, tail: str = "") -> str:
    """``/projects/<url-encoded full path>``: GitLab's documented id for a project by path."""
    return f"/projects/{quote(project, safe='')}{tail}"


def rate_limit_wait(status: int, headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until GitLab answers again, or None when this is no rate limit."""
    if status != 429:
        return None
    retry_after = headers.get("retry-after", "")
    if retry_after.isdigit():
        return float(retry_after)
    reset = headers.get("ratelimit-reset", "")
    if reset.isdigit():
        return max(float(reset) - now, 0.0) + 1.0
    return DEFAULT_RATE_LIMIT_WAIT


class GitLabClient(RestClient):
    host = "GitLab"
    forge = FORGE

    def __init__(
        self,
        api_url: str,
        token: str,
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
        self._token = token

    async def call(
        self,
        method: str,
        path: str,
        *,
        project: str | None = None,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        allow: Sequence[int] = (),
    ) -> Reply:
        """One API call; a status in ``allow`` is returned instead of raised."""
        url = self.url_of(path)
        async with self.serialised(method, project):
            answer = await self.request(
                method,
                url,
                subject=project or "the GitLab user",
                headers=self._headers,
                body=body,
                params=params,
            )
        if answer.status in allow or answer.status < 300:
            next_url = _next_url(answer.response, answer.headers)
            return Reply(answer.status, answer.data, answer.headers, next_url)
        raise _http_error(answer.status, project, answer.data)

    async def get(self, path: str, *, project: str | None = None, **kw: Any) -> Any:
        return (await self.call("GET", path, project=project, **kw)).data

    async def get_all(
        self, path: str, *, project: str | None = None, params: Mapping[str, str] | None = None
    ) -> list[Any]:
        """Every item of a paginated list."""
        items: list[Any] = []
        next_url: str | None = path
        query: Mapping[str, str] | None = {"per_page": "100", **(params or {})}
        while next_url is not None:
            reply = await self.call("GET", next_url, project=project, params=query)
            items.extend(reply.data or ())
            next_url, query = reply.next_url, None  # the next link carries the query
        return items

    def rate_limit_wait(
        self, status: int, headers: Mapping[str, str], data: Any, now: float
    ) -> float | None:
        return rate_limit_wait(status, headers, now)

    def count(self, response: httpx.Response) -> None:
        super().count(response)
        remaining = response.headers.get("ratelimit-remaining", "")
        if remaining.isdigit():
            self.stats.budget(FORGE, "api", int(remaining))

    async def _headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self._token, "User-Agent": "tamma-trio"}


def _next_url(response: httpx.Response, headers: Mapping[str, str]) -> str | None:
    link = response.links.get("next", {}).get("url")
    if link:
        return str(link)
    page = headers.get("x-next-page", "")
    if page.isdigit():
        return str(response.request.url.copy_merge_params({"page": page}))
    return None


def _http_error(status: int, project: str | None, data: Any) -> EngineError:
    where = project or "the GitLab user"
    if status == 401:
        return EngineError(
            f"GitLab refused the token (401) for {where}", code="unauthorized", retryable=False
        )
    if status in (403, 404):
        return EngineError(
            f"GitLab has no such resource in {where}, or the token cannot see it ({status})",
            code="not_found" if status == 404 else "forbidden",
            retryable=False,
        )
    said = data.get("message", data.get("error", "")) if isinstance(data, Mapping) else ""
    return EngineError(
        f"GitLab answered {status} for {where}: {str(said)[:200]}",
        code=f"gitlab_{status}",
        retryable=status >= 500,
    )
