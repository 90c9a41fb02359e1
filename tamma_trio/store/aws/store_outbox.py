"""The SqsStore's service events and their webhook outbox, for SqsStore to inherit: each checks
the store is open and asks notifications.py."""

from __future__ import annotations

from collections.abc import Sequence

from tamma_trio.service_events import (
    NewServiceEvent,
    Notification,
    NotificationStatus,
    PrunedEvents,
    ServiceEvent,
)
from tamma_trio.store import lifecycle
from tamma_trio.store.aws import notifications
from tamma_trio.store.aws.tables import Tables
from tamma_trio.store.base import WallClock


class SqsOutboxMethods:
    """Service events and notifications over the store's tables (set by SqsStore.open)."""

    tables: Tables
    _clock: WallClock

    async def _enter(self) -> None:
        raise NotImplementedError

    # --- service events and their webhook outbox ------------------------------------------
    async def publish(self, event: NewServiceEvent, targets: Sequence[str] = ()) -> ServiceEvent:
        await self._enter()
        return await notifications.publish(self.tables, event, targets, self._clock())

    async def service_events(self, *, after: int = 0, limit: int = 100) -> list[ServiceEvent]:
        await self._enter()
        return await notifications.events_after(self.tables, after, limit)

    async def notifications(
        self, *, status: NotificationStatus | None = None, limit: int = 100
    ) -> list[Notification]:
        await self._enter()
        return await notifications.select(self.tables, status, limit)

    async def record_notification(
        self, delivery_id: int, *, error: str | None, next_attempt: float | None = None
    ) -> None:
        await self._enter()
        now = self._clock()
        await notifications.record(self.tables, delivery_id, error, next_attempt, now)

    async def renotify(self, delivery_ids: Sequence[int] | None = None) -> int:
        await self._enter()
        return await notifications.renotify(self.tables, delivery_ids, self._clock())

    async def prune_events(
        self, before: float, dead_before: float, limit: int, *, dry_run: bool = False
    ) -> PrunedEvents:
        lifecycle.check_limit(limit)
        await self._enter()
        return await notifications.prune_events(self.tables, before, dead_before, limit, dry_run)
