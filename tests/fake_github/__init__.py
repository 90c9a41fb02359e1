"""A GitHub-shaped HTTP server on loopback for the GitHub forge's tests (see state.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from quart_trio import QuartTrio

from tamma_trio.web.server import serve_app
from tests.fake_github.app import create_app
from tests.fake_github.state import APP_SLUG, BOT_LOGIN, FakeGitHub, FakeRepo

__all__ = ["APP_SLUG", "BOT_LOGIN", "FakeGitHub", "FakeRepo", "serving", "serving_app"]


@asynccontextmanager
async def serving_app(app: QuartTrio) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) for the block; yields its base URL."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            lambda task_status: serve_app(
                app, "127.0.0.1", 0, shutdown_trigger=stop.wait, task_status=task_status
            )
        )
        try:
            yield str(urls[0]).rstrip("/")
        finally:
            stop.set()


@asynccontextmanager
async def serving(fake: FakeGitHub) -> AsyncIterator[FakeGitHub]:
    """Serve ``fake`` on loopback for the duration of the block."""
    async with serving_app(create_app(fake)) as url:
        fake.base_url = url
        yield fake
