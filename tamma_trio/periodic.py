"""Fixed-rate loops for the daemon's background parts (snapshots, lease renewal, reclaiming)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio


async def every(interval: float, action: Callable[[], Awaitable[object]]) -> None:
    """Call ``action`` every ``interval`` seconds, forever, at a fixed rate: a slow call
    shortens the next wait instead of pushing every later call back."""
    deadline = trio.current_time()
    while True:
        deadline += interval
        await trio.sleep_until(deadline)
        await action()
