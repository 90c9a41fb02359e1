"""The service event stream and webhook outbox of the MemoryStore: plain lists and dicts.

Kept apart from memory.py so each file holds one concern; the MemoryStore owns one of these in
its MemoryState (so a second store over the same state sees the outbox, like a restart would).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from tamma_trio.service_events import (
    NewServiceEvent,
    Notification,
    NotificationStatus,
    PrunedEvents,
    ServiceEvent,
    expired_notifications,
    unreferenced_events,
)
from tamma_trio.store.base import WallClock
from tamma_trio.store.lifecycle import check_limit, utc


@dataclass
class MemoryOutbox:
    events: list[ServiceEvent] = field(default_factory=list)  # by id; pruned from the front
    deliveries: dict[int, Notification] = field(default_factory=dict)
    last_event_id: int = 0
    last_delivery_id: int = 0

    def publish(self, event: NewServiceEvent, targets: Sequence[str], now: float) -> ServiceEvent:
        self.last_event_id += 1
        stored = ServiceEvent(id=self.last_event_id, at=utc(now), **event.model_dump())
        self.events.append(stored)
        for target in targets:
            self.last_delivery_id += 1
            self.deliveries[self.last_delivery_id] = Notification(
                id=self.last_delivery_id,
                event=stored,
                target=target,
                status=NotificationStatus.PENDING,
                next_attempt_at=utc(now),
            )
        return stored

    def after(self, after: int, limit: int) -> list[ServiceEvent]:
        start = bisect.bisect_right(self.events, after, key=lambda event: event.id)
        return self.events[start : start + limit]

    def prune(self, before: float, dead_before: float, limit: int, dry_run: bool) -> PrunedEvents:
        notes = expired_notifications(self.deliveries.values(), before, dead_before, limit)
        doomed = {note.id for note in notes}
        staying = [note for note in self.deliveries.values() if note.id not in doomed]
        events = unreferenced_events(self.events, staying, before, limit)
        if not dry_run:
            for note in notes:
                del self.deliveries[note.id]
            gone = {event.id for event in events}
            self.events = [event for event in self.events if event.id not in gone]
        return PrunedEvents(len(events), len(notes))

    def select(self, status: NotificationStatus | None, limit: int) -> list[Notification]:
        found = [d for d in self.deliveries.values() if status is None or d.status == status]
        if status is NotificationStatus.PENDING:
            found.sort(key=lambda d: (d.next_attempt_at or utc(0), d.id))
        else:
            found.sort(key=lambda d: d.id, reverse=True)
        return found[:limit]

    def record(
        self, delivery_id: int, error: str | None, next_attempt: float | None, now: float
    ) -> None:
        delivery = self.deliveries.get(delivery_id)
        if delivery is None or delivery.status is not NotificationStatus.PENDING:
            return
        if error is None:
            change = {"status": NotificationStatus.DELIVERED, "delivered_at": utc(now)}
        else:
            change = {
                "attempts": delivery.attempts + 1,
                "last_error": error,
                "status": NotificationStatus.PENDING if next_attempt else NotificationStatus.DEAD,
                "next_attempt_at": utc(next_attempt) if next_attempt else None,
            }
        self.deliveries[delivery_id] = delivery.model_copy(update=change)

    def renotify(self, delivery_ids: Sequence[int] | None, now: float) -> int:
        wanted = set(self.deliveries) if delivery_ids is None else set(delivery_ids)
        count = 0
        for delivery_id in wanted:
            delivery = self.deliveries.get(delivery_id)
            if delivery is not None and delivery.status is NotificationStatus.DEAD:
                self.deliveries[delivery_id] = delivery.model_copy(
                    update={
                        "status": NotificationStatus.PENDING,
                        "attempts": 0,
                        "next_attempt_at": utc(now),
                    }
                )
                count += 1
        return count


class MemoryOutboxMethods:
    """The TaskStore methods of the event stream and outbox, for MemoryStore to inherit."""

    _clock: WallClock

    @property
    def _outbox(self) -> MemoryOutbox:
        raise NotImplementedError

    async def _enter(self) -> None:
        raise NotImplementedError

    # --- service events and their webhook outbox ------------------------------------------
    async def publish(self, event: NewServiceEvent, targets: Sequence[str] = ()) -> ServiceEvent:
        await self._enter()
        return self._outbox.publish(event, targets, self._clock())

    async def service_events(self, *, after: int = 0, limit: int = 100) -> list[ServiceEvent]:
        await self._enter()
        return self._outbox.after(after, limit)

    async def notifications(
        self, *, status: NotificationStatus | None = None, limit: int = 100
    ) -> list[Notification]:
        await self._enter()
        return self._outbox.select(status, limit)

    async def record_notification(
        self, delivery_id: int, *, error: str | None, next_attempt: float | None = None
    ) -> None:
        await self._enter()
        self._outbox.record(delivery_id, error, next_attempt, self._clock())

    async def renotify(self, delivery_ids: Sequence[int] | None = None) -> int:
        await self._enter()
        return self._outbox.renotify(delivery_ids, self._clock())

    async def prune_events(
        self, before: float, dead_before: float, limit: int, *, dry_run: bool = False
    ) -> PrunedEvents:
        check_limit(limit)
        await self._enter()
        return self._outbox.prune(before, dead_before, limit, dry_run)
