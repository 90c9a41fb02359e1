"""What the service tests share: stores over one set of data, a started service, waits.

Times are virtual (the tests run under MockClock's autojump); waits poll a condition in
virtual time and never measure it, so only engine and event times are asserted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from tamma_trio.config import Config
from tamma_trio.models import NewTask, TaskStatus
from tamma_trio.service import Service
from tamma_trio.status import ServiceState
from tamma_trio.store.base import TaskStore, WallClock
from tamma_trio.store.memory import MemoryStore
from tamma_trio.store.memory_reads import MemoryState
from tamma_trio.store.sqlite import SqliteStore
from tests.fake_engine import FakeEngine, FakeOptions

STORE_KINDS = ("memory", "sqlite")

REPO = "acme/widgets"


class Stores:
    """Opens stores over one set of data; a second store with a new boot id is a restart."""

    def __init__(self, kind: str, path: Path, wall: WallClock) -> None:
        self.kind = kind
        self.path = path
        self.wall = wall
        self.state = MemoryState()
        self._opened = AsyncExitStack()

    async def open(self, boot_id: str | None = None) -> TaskStore:
        store: TaskStore
        if self.kind == "memory":
            store = MemoryStore(clock=self.wall, boot_id=boot_id, state=self.state)
        else:
            store = SqliteStore(
                self.path, synchronous="NORMAL", clock=self.wall, boot_id=boot_id, inline=True
            )
        return await self._opened.enter_async_context(store)

    async def close(self) -> None:
        await self._opened.aclose()


def make_config(**service: Any) -> Config:
    settings: dict[str, Any] = {
        "health_check": {"enabled": False},
        "metrics": {"enabled": False},
        "poll_interval": 60,
        "retry_delay": 10,
        **service,
    }
    return Config.model_validate({"service": settings})


def fake(**options: Any) -> FakeEngine:
    return FakeEngine(FakeOptions.model_validate(options))


@asynccontextmanager
async def running(
    stores: Stores, store: TaskStore, engine: FakeEngine, **service: Any
) -> AsyncIterator[Service]:
    """A started service; leaving the block drains it like a SIGTERM would."""
    daemon = Service(make_config(**service), store, lambda _: engine, wall=stores.wall, rng=zero)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        yield daemon
        daemon.request_shutdown()
        await daemon.state.wait_value(ServiceState.STOPPED)


def zero() -> float:
    return 0.0


def pr_task(number: int = 12, **fields: Any) -> NewTask:
    return NewTask.build(
        "pr_review_requested", {"repository": REPO, "pull_request": {"number": number}}, **fields
    )


def issue_task(number: int = 7) -> NewTask:
    return NewTask.build("issue_assigned", {"repository": REPO, "issue": {"number": number}})


async def wait_for(check: Callable[[], Awaitable[bool]], within: float = 300) -> None:
    """Poll in virtual time; only the condition's truth matters, never how long it took."""
    with trio.fail_after(within):
        while not await check():
            await trio.sleep(0.05)


async def status_is(store: TaskStore, task_id: int, *statuses: TaskStatus) -> None:
    async def check() -> bool:
        return (await store.get(task_id)).status in statuses

    await wait_for(check)


async def event_kinds(store: TaskStore, task_id: int) -> list[str]:
    return [event.kind for event in await store.events(task_id)]


async def called(engine: FakeEngine, step: str) -> bool:
    await trio.lowlevel.checkpoint()
    return step in engine.steps()


async def has_event(store: TaskStore, task_id: int, kind: str) -> bool:
    return kind in await event_kinds(store, task_id)


async def outcome_count(daemon: Service, outcome: str) -> bool:
    await trio.lowlevel.checkpoint()
    value = daemon.metrics.registry.get_sample_value(
        "tamma_task_outcomes_total", {"type": "pr_review_requested", "outcome": outcome}
    )
    return bool(value)
