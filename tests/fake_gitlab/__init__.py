"""A GitLab-shaped HTTP server on loopback for the GitLab forge's tests (see state.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.fake_github import serving_app
from tests.fake_gitlab.app import create_app
from tests.fake_gitlab.state import FakeGitLab, FakeProject

__all__ = ["FakeGitLab", "FakeProject", "serving"]


@asynccontextmanager
async def serving(fake: FakeGitLab) -> AsyncIterator[FakeGitLab]:
    """Serve ``fake`` on loopback; its api_url is then ``<base>/api/v4``."""
    async with serving_app(create_app(fake)) as url:
        fake.base_url = url
        yield fake
