"""Shared fixtures. Task stores: every backend, a hand-driven wall clock, a task builder.

Every test also runs hermetically: without the shell's TAMMA_* variables and in an empty
working directory, so an operator's quickstart (a ./tamma.toml, TAMMA_CONFIG) cannot change
what a test sees, in this process or in the daemons and CLIs it starts.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tamma_trio.models import NewTask
from tamma_trio.store.base import TaskStore
from tests.store_helpers import STORE_BACKENDS, FakeWall, StoreFactory, TaskBuilder


@pytest.fixture(autouse=True)
def hermetic(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No TAMMA_* from the shell, and a fresh empty working directory for every test."""
    for name in [name for name in os.environ if name.startswith("TAMMA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def wall() -> FakeWall:
    return FakeWall()


@pytest.fixture(params=STORE_BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return StoreFactory(backend=request.param, path=tmp_path / "tasks.db")


@pytest.fixture
async def store(store_factory: StoreFactory, wall: FakeWall) -> AsyncIterator[TaskStore]:
    """An open store of each backend, on the hand-driven clock ``wall``."""
    opened = store_factory(clock=wall, boot_id="boot-a")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
def make_task() -> TaskBuilder:
    """``make_task(issue_number, **options)``: a valid issue_assigned NewTask on acme/widgets."""

    def build(number: int = 1, **options: Any) -> NewTask:
        payload = {"repository": "acme/widgets", "issue": {"number": number, "title": "t"}}
        return NewTask.build("issue_assigned", payload, **options)

    return build
