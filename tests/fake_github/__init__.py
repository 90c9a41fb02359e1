"""A GitHub-shaped HTTP server on loopback for the GitHub forge's tests (see state.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from tamma_trio.web.server import serve_app
from tests.fake_github.app import create_app
from tests.fake_github.state import APP_SLUG, BOT_LOGIN, FakeGitHub, FakeRepo

__all__ = ["APP_SLUG", "BOT_LOGIN", "FakeGitHub", "FakeRepo", "serving"]


@asynccontextmanager
async def serving(fake: FakeGitHub) -> AsyncIterator[FakeGitHub]:
    """Serve ``fake`` on 127.0.0.1 (a free port) for the duration of the block."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            lambda task_status: serve_app(
                create_app(fake),
                "127.0.0.1",
                0,
                shutdown_trigger=stop.wait,
                task_status=task_status,
            )
        )
        fake.base_url = str(urls[0]).rstrip("/")
        try:
            yield fake
        finally:
            stop.set()
