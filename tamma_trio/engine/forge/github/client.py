"""GitHub's REST API v3 over httpx (which runs on trio), decoded by gidgethub's sans-I/O core.

gidgethub builds the headers and decodes bodies, errors and ``Link`` pagination; this module is
the small I/O loop around it that the daemon needs and gidgethub leaves to its backends:

- rate limits: a 429, or a 403 with ``x-ratelimit-remaining: 0`` or a secondary-limit message,
  is waited out (``retry-after``, else until ``x-ratelimit-reset``, else a minute) when the wait
  is at most ``max_wait``; a longer one becomes a retryable EngineError whose ``retry_at`` is the
  reset, so the task comes back then instead of holding a worker;
- 502/503/504 and dropped connections are retried with a short backoff;
- mutations are serialised per repository (bursts of writes are what trips secondary limits);
- 401, 403 and 404 are not retryable and name the repository, never the token.

``wall`` and ``sleep`` are injected so tests drive rate-limit waits without sleeping.
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

from tamma_trio.engine.forge.http_util import MAX_TRIES, RETRY_STATUSES, Sleep, Wall
from tamma_trio.engine.forge.http_util import decode_json as _decode
from tamma_trio.engine.forge.http_util import lower_headers as _lower
from tamma_trio.engine.forge.http_util import origin as _origin
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


class GitHubClient:
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
        self.api_url = api_url.rstrip("/")
        self.credentials = credentials
        self.stats = stats or ForgeStats()
        self.max_wait = max_wait
        self.wall = wall
        self.sleep = sleep
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._write_locks: dict[str, trio.Lock] = {}
        self._origin = _origin(self.api_url)

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the public calls ---------------------------------------------------------------------
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
        url = path if path.startswith(("http://", "https://")) else self.api_url + path
        if _origin(url) != self._origin:
            raise EngineError(f"GitHub pointed outside {self._origin}", code="bad_link")
        if method == "GET" or repository is None:
            return await self._call(method, url, repository, body, params, allow, as_app)
        lock = self._write_locks.setdefault(repository, trio.Lock())
        async with lock:
            return await self._call(method, url, repository, body, params, allow, as_app)

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

    # --- the loop -----------------------------------------------------------------------------
    async def _call(
        self,
        method: str,
        url: str,
        repository: str | None,
        body: Any,
        params: Mapping[str, str] | None,
        allow: Sequence[int],
        as_app: bool,
    ) -> Reply:
        for attempt in range(MAX_TRIES):
            last = attempt == MAX_TRIES - 1
            response = await self._send(method, url, repository, body, params, as_app, last)
            if response is None:  # a dropped connection, retried
                await self.sleep(2.0**attempt)
                continue
            status, headers = response.status_code, _lower(response.headers)
            data = _decode(headers, response.content)
            if status in RETRY_STATUSES and not last:
                await self.sleep(2.0**attempt)
                continue
            wait = rate_limit_wait(status, headers, data, self.wall())
            if wait is not None:
                if wait > self.max_wait or last:
                    raise _rate_limited(_subject(repository, url), wait, self.wall() + wait)
                await self.sleep(wait)
                continue
            if status == 401 and not last and self.credentials.forget(repository):
                continue  # an App token that expired early: ask for a fresh one
            subject = _subject(repository, url)
            return _reply(status, headers, response.content, data, subject, allow)
        raise AssertionError("unreachable: the last try returns or raises")

    async def _send(
        self,
        method: str,
        url: str,
        repository: str | None,
        body: Any,
        params: Mapping[str, str] | None,
        as_app: bool,
        last: bool,
    ) -> httpx.Response | None:
        headers = sansio.create_headers(REQUESTER, accept=ACCEPT)
        headers["authorization"] = await self.credentials.authorization(repository, as_app=as_app)
        headers["x-github-api-version"] = API_VERSION
        try:
            response = await self._http.request(
                method, url, headers=headers, json=body, params=params
            )
        except httpx.HTTPError as exc:
            self.stats.request("github", "error")
            if last:
                raise EngineError(
                    f"GitHub did not answer ({type(exc).__name__}) for {_subject(repository, url)}",
                    code="forge_unreachable",
                ) from None
            return None
        self._count(response)
        return response

    def _count(self, response: httpx.Response) -> None:
        self.stats.request("github", response.status_code)
        remaining = response.headers.get("x-ratelimit-remaining", "")
        if remaining.isdigit():
            resource = response.headers.get("x-ratelimit-resource", "core")
            self.stats.budget("github", resource, int(remaining))


def _subject(repository: str | None, url: str) -> str:
    """What an error names: the repository, else the API path (``/user``, ``/app``), which
    says whose credentials were meant and never holds a secret."""
    return repository or urlsplit(url).path


def _reply(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    data: Any,
    subject: str,
    allow: Sequence[int],
) -> Reply:
    if status in allow:
        return Reply(status, data, None, headers)
    try:
        decoded, _limit, next_url = sansio.decipher_response(status, headers, content)
    except HTTPException as exc:
        raise _http_error(status, subject, exc) from None
    return Reply(status, decoded, next_url, headers)


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


def _rate_limited(subject: str, wait: float, retry_at: float) -> EngineError:
    return EngineError(
        f"GitHub rate limit for {subject}: retry in {wait:.0f} s",
        code="rate_limited",
        retryable=True,
        retry_at=retry_at,
    )
