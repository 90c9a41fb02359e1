"""The request loop both REST forges run, whatever the host: GitHub and GitLab differ in how they
authenticate, how they say "rate limited" and how they word errors, not in what the daemon does
about it.

- a link must stay on the API's origin (a pagination link is followed, never a redirect);
- dropped connections and 502/503/504 are retried with a short backoff;
- a rate limit is waited out when the wait is at most ``max_wait``; a longer one (or one on the
  last try) is a retryable EngineError whose ``retry_at`` is the reset, so the task comes back
  then instead of holding a worker;
- mutations are serialised per repository (bursts of writes are what trips secondary limits).

``wall`` and ``sleep`` are injected so tests drive rate-limit waits without sleeping.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, ClassVar

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


@dataclass(frozen=True)
class Answer:
    """The response the loop settled on: no retry or wait was left to try."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    data: Any  # the decoded JSON body, or None
    response: httpx.Response


class RestClient:
    """What a forge's client shares; a subclass says how its host authenticates and limits."""

    host: ClassVar[str]  # "GitHub": what errors name
    forge: ClassVar[str]  # "github": the metrics' label

    def __init__(
        self,
        api_url: str,
        *,
        stats: ForgeStats | None,
        timeout: float,
        max_wait: float,
        wall: Wall,
        sleep: Sleep,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.stats = stats or ForgeStats()
        self.max_wait = max_wait
        self.wall = wall
        self.sleep = sleep
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._write_locks: dict[str, trio.Lock] = {}
        self._origin = origin(self.api_url)

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- what a host says -------------------------------------------------------------------
    def rate_limit_wait(
        self, status: int, headers: Mapping[str, str], data: Any, now: float
    ) -> float | None:
        """Seconds until the host answers again, or None when this is no rate limit."""
        raise NotImplementedError

    def count(self, response: httpx.Response) -> None:
        """Record the request (and the budget the host reports) in the forge's metrics."""
        self.stats.request(self.forge, response.status_code)

    # --- the loop -----------------------------------------------------------------------------
    def url_of(self, path: str) -> str:
        url = path if path.startswith(("http://", "https://")) else self.api_url + path
        if origin(url) != self._origin:
            raise EngineError(f"{self.host} pointed outside {self._origin}", code="bad_link")
        return url

    def serialised(self, method: str, repository: str | None) -> AbstractAsyncContextManager[Any]:
        """The repository's write lock for a mutation; nothing for a read."""
        if method == "GET" or repository is None:
            return contextlib.nullcontext()
        return self._write_locks.setdefault(repository, trio.Lock())

    async def request(
        self,
        method: str,
        url: str,
        *,
        subject: str,
        headers: Callable[[], Awaitable[dict[str, str]]],
        body: Any = None,
        params: Mapping[str, str] | None = None,
        refresh: Callable[[], bool] = lambda: False,
    ) -> Answer:
        """Send until an answer stands. ``subject`` is what errors name (never a secret);
        ``refresh`` drops refused credentials, True when asking again can help."""
        for attempt in range(MAX_TRIES):
            last = attempt == MAX_TRIES - 1
            sent = await self._send(method, url, await headers(), body, params, subject, last)
            if sent is None:  # a dropped connection, retried
                await self.sleep(2.0**attempt)
                continue
            status, answer_headers = sent.status_code, lower_headers(sent.headers)
            if status in RETRY_STATUSES and not last:
                await self.sleep(2.0**attempt)
                continue
            data = decode_json(answer_headers, sent.content)
            wait = self.rate_limit_wait(status, answer_headers, data, self.wall())
            if wait is not None:
                if wait > self.max_wait or last:
                    raise self._rate_limited(subject, wait)
                await self.sleep(wait)
                continue
            if status == 401 and not last and refresh():
                continue
            return Answer(status, answer_headers, sent.content, data, sent)
        raise AssertionError("unreachable: the last try returns or raises")

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Any,
        params: Mapping[str, str] | None,
        subject: str,
        last: bool,
    ) -> httpx.Response | None:
        try:
            response = await self._http.request(
                method, url, headers=headers, json=body, params=params
            )
        except httpx.HTTPError as exc:
            self.stats.request(self.forge, "error")
            if last:
                raise EngineError(
                    f"{self.host} did not answer ({type(exc).__name__}) for {subject}",
                    code="forge_unreachable",
                ) from None
            return None
        self.count(response)
        return response

    def _rate_limited(self, subject: str, wait: float) -> EngineError:
        return EngineError(
            f"{self.host} rate limit for {subject}: retry in {wait:.0f} s",
            code="rate_limited",
            retryable=True,
            retry_at=self.wall() + wait,
        )
