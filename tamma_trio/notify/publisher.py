"""Records service events in the store, with a delivery for every webhook that wants them.

The event and its deliveries are written in one transaction, so a crash can lose neither half;
sending happens later, in the Sender, so a slow or dead receiver never holds up a task. A store
that fails to record an event costs that event, never the task that caused it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from tamma_trio.event_feed import EventFeed
from tamma_trio.models import Task
from tamma_trio.notify_config import NotifyTarget
from tamma_trio.service_events import EventKind, NewServiceEvent
from tamma_trio.store.base import TaskStore
from tamma_trio.store.lifecycle import repository_of

log = logging.getLogger(__name__)


class Publisher:
    def __init__(
        self,
        store: TaskStore,
        targets: Sequence[NotifyTarget],
        feed: EventFeed,
        on_delivery_queued: Callable[[], None],
    ) -> None:
        self.store = store
        self.targets = tuple(targets)
        self.feed = feed
        self.on_delivery_queued = on_delivery_queued

    async def emit(
        self,
        kind: EventKind,
        task: Task | None = None,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record one event; errors are logged, never raised (the task's ending stands)."""
        event = NewServiceEvent(
            kind=kind,
            task_id=task.id if task else None,
            task_type=task.type.value if task else None,
            repository=repository_of(task.subject) if task else None,
            subject=task.subject if task else None,
            reason=reason,
            detail=detail or {},
        )
        names = [target.name for target in self.targets if kind in target.events]
        try:
            await self.store.publish(event, names)
        except Exception as exc:
            log.warning("could not record the %s event: %s", kind.value, exc)
            return
        self.feed.published()
        if names:
            self.on_delivery_queued()

    async def task_event(
        self, kind: EventKind, task: Task, reason: str | None, detail: dict[str, Any]
    ) -> None:
        """The worker's entry point (see worker_ports.TaskEvents)."""
        await self.emit(kind, task, reason, detail)
