"""Shared fixtures: task stores over every backend, a hand-driven wall clock, task builders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tamma_trio.models import NewTask
from tamma_trio.store.base import DEFAULT_QUARANTINE_AFTER, TaskStore, WallClock
from tamma_trio.store.memory import MemoryState, MemoryStore
from tamma_trio.store.sqlite import SqliteStore

# 2026-01-01T00:00:00Z: a round start for the hand-driven wall clock.
START_WALL = 1_767_225_600.0


class FakeWall:
    """A wall clock the test moves by hand: deterministic times on every backend, any thread."""

    def __init__(self, start: float = START_WALL) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def wall() -> FakeWall:
    return FakeWall()


# One entry per backend of the contract suite; Redis and SQS join as further entries.
STORE_BACKENDS = ("memory", "sqlite-inline", "sqlite-thread")


@dataclass
class StoreFactory:
    """Builds stores of one backend that share one body of data (one file, one MemoryState).

    A second store from the same factory is what a restarted daemon, or the CLI beside a running
    daemon, sees: the same tasks under a different boot id.
    """

    backend: str
    path: Path
    memory: MemoryState = field(default_factory=MemoryState)

    def __call__(
        self,
        *,
        clock: WallClock,
        boot_id: str | None = None,
        quarantine_after: int = DEFAULT_QUARANTINE_AFTER,
    ) -> TaskStore:
        options: dict[str, Any] = {
            "clock": clock,
            "boot_id": boot_id,
            "quarantine_after": quarantine_after,
        }
        if self.backend == "memory":
            return MemoryStore(state=self.memory, **options)
        inline = self.backend == "sqlite-inline"
        return SqliteStore(self.path, inline=inline, **options)


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


TaskBuilder = Callable[..., NewTask]


@pytest.fixture
def make_task() -> TaskBuilder:
    """``make_task(issue_number, **options)``: a valid issue_assigned NewTask on acme/widgets."""

    def build(number: int = 1, **options: Any) -> NewTask:
        payload = {"repository": "acme/widgets", "issue": {"number": number, "title": "t"}}
        return NewTask.build("issue_assigned", payload, **options)

    return build
