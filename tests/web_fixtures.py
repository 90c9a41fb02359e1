"""Shared pieces of the HTTP tests (test_web.py, test_api.py): deps, clients, odd stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

from tamma_trio.config import ServiceConfig
from tamma_trio.errors import StoreError
from tamma_trio.metrics import Metrics
from tamma_trio.status import ServiceState, ServiceStatus
from tamma_trio.store.memory import MemoryStore
from tamma_trio.web import WebDeps

WALL_EPOCH = 1_750_000_000.0
LOOPBACK = {"client": ("127.0.0.1", 40000)}


def remote(address: str | None) -> dict[str, Any]:
    """scope_base for a request from ``address`` (None: no peer address, e.g. a unix socket)."""
    return {"client": None if address is None else (address, 40000)}


def wall_clock() -> float:
    """Wall seconds that follow trio's clock, so MockClock moves persisted times too."""
    return WALL_EPOCH + trio.current_time()


class Wakes:
    """Counts the poller wake-ups the HTTP side asks for."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


OpenMemoryStore = Callable[[], Awaitable[MemoryStore]]


@asynccontextmanager
async def memory_stores() -> AsyncIterator[OpenMemoryStore]:
    """Opens memory stores for one test (the conftest's ``memory_store`` fixture) and closes
    them when it ends."""
    async with AsyncExitStack() as opened:

        async def open_one() -> MemoryStore:
            store = MemoryStore(clock=wall_clock, boot_id="web-test")
            return await opened.enter_async_context(store)

        yield open_one


def make_deps(
    store: Any, *, config: ServiceConfig | None = None, state: ServiceState = ServiceState.RUNNING
) -> tuple[WebDeps, Wakes]:
    status = ServiceStatus(started_at=trio.current_time(), state=state, store_ok=True)
    status.engine = "fake"
    wakes = Wakes()
    deps = WebDeps(
        store=store,
        status=status,
        metrics=Metrics(status),
        wake=wakes,
        config=config or ServiceConfig(),
        now=trio.current_time,
        wall=wall_clock,
    )
    return deps, wakes


class HangingStore:
    """A store whose every call blocks forever, like SQLite stuck behind a long write."""

    boot_id = "hanging"

    def __init__(self) -> None:
        self.entered = trio.Event()

    def __getattr__(self, name: str) -> Any:
        async def hang(*args: Any, **kwargs: Any) -> Any:
            self.entered.set()
            await trio.sleep_forever()

        return hang


class BrokenStore:
    """A store whose every call fails the way an unreachable backend does."""

    boot_id = "broken"

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise StoreError("database is locked")

        return fail
