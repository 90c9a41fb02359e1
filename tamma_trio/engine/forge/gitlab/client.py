"""GitLab's REST API v4 over httpx (which runs on trio), with the loop the daemon needs.

httpx is used directly rather than a GitLab library: python-gitlab is synchronous (a worker
thread per call) and gidgetlab's sans-I/O core would add a dependency for header building and
``Link`` parsing that httpx already does; the rest (rate limits, retries) is ours either way.

- the token travels in ``PRIVATE-TOKEN`` (personal, project and group access tokens all accept
  it) and never in a URL, a log or an error;
- a 429 is waited out (``Retry-After``, else until ``RateLimit-Reset``, else a minute) when the
  wait is at most ``max_wait``; a longer one is a retryable EngineError whose ``retry_at`` is the
  reset, so the task comes back then without spending a retry;
- 502/503/504 and dropped connections are retried with a short backoff;
- lists follow ``Link: rel="next"`` (else ``X-Next-Page``) to the end;
- mutations are serialised per project; 401, 403 and 404 are not retryable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import trio

from tamma_trio.engine.forge.http_util import (
    MAX_TRIES,
    RETRY_STATUSES,
    Sleep,
    Wall,
    decode_json,
    lower_headers,
    origin,
)
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


class GitLabClient:
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
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.stats = stats or ForgeStats()
        self.max_wait = max_wait
        self.wall = wall
        self.sleep = sleep
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._write_locks: dict[str, trio.Lock] = {}
        self._origin = origin(self.api_url)

    async def aclose(self) -> None:
        await self._http.aclose()

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
        url = path if path.startswith(("http://", "https://")) else self.api_url + path
        if origin(url) != self._origin:
            raise EngineError(f"GitLab pointed outside {self._origin}", code="bad_link")
        if method == "GET" or project is None:
            return await self._call(method, url, project, body, params, allow)
        async with self._write_locks.setdefault(project, trio.Lock()):
            return await self._call(method, url, project, body, params, allow)

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

    async def _call(
        self,
        method: str,
        url: str,
        project: str | None,
        body: Any,
        params: Mapping[str, str] | None,
        allow: Sequence[int],
    ) -> Reply:
        for attempt in range(MAX_TRIES):
            last = attempt == MAX_TRIES - 1
            response = await self._send(method, url, project, body, params, last)
            if response is None:
                await self.sleep(2.0**attempt)
                continue
            status, headers = response.status_code, lower_headers(response.headers)
            if status in RETRY_STATUSES and not last:
                await self.sleep(2.0**attempt)
                continue
            wait = rate_limit_wait(status, headers, self.wall())
            if wait is not None:
                if wait > self.max_wait or last:
                    raise _rate_limited(project, wait, self.wall() + wait)
                await self.sleep(wait)
                continue
            data = decode_json(headers, response.content)
            if status in allow or status < 300:
                return Reply(status, data, headers, _next_url(response, headers))
            raise _http_error(status, project, data)
        raise AssertionError("unreachable: the last try returns or raises")

    async def _send(
        self,
        method: str,
        url: str,
        project: str | None,
        body: Any,
        params: Mapping[str, str] | None,
        last: bool,
    ) -> httpx.Response | None:
        headers = {"PRIVATE-TOKEN": self._token, "User-Agent": "tamma-trio"}
        try:
            response = await self._http.request(
                method, url, headers=headers, json=body, params=params
            )
        except httpx.HTTPError as exc:
            self.stats.request(FORGE, "error")
            if last:
                raise EngineError(
                    f"GitLab did not answer ({type(exc).__name__}) for {project or 'the user'}",
                    code="forge_unreachable",
                ) from None
            return None
        self.stats.request(FORGE, response.status_code)
        remaining = response.headers.get("ratelimit-remaining", "")
        if remaining.isdigit():
            self.stats.budget(FORGE, "api", int(remaining))
        return response


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


def _rate_limited(project: str | None, wait: float, retry_at: float) -> EngineError:
    return EngineError(
        f"GitLab rate limit for {project or 'the GitLab user'}: retry in {wait:.0f} s",
        code="rate_limited",
        retryable=True,
        retry_at=retry_at,
    )
