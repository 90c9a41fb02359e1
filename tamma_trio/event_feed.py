"""The in-process signal that the store holds newer service events, for live readers.

Apart from service_events.py, whose models the config and the CLI import: this is the only part
that needs trio, and a command that only reads the store should not load it for nothing.
"""

from __future__ import annotations

from trio_util import AsyncValue


class EventFeed:
    """Tells live readers (the SSE stream) that the store holds newer events.

    A generation counter rather than an Event: a reader snapshots it, reads the store, then
    waits for a different value, so an event published while it was reading is never missed.
    """

    def __init__(self) -> None:
        self.generation = AsyncValue(0)

    def published(self) -> None:
        self.generation.value += 1
