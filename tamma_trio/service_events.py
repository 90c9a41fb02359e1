"""The service's outward events and their webhook deliveries, as stored and as shown.

One stream, numbered by the store: the id is what a Server-Sent Events client sends back as
``Last-Event-ID`` and what a webhook receiver dedupes on, since a delivery is at least once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_serializer


class EventKind(StrEnum):
    SERVICE_STARTED = "service.started"
    SERVICE_STOPPED = "service.stopped"
    TASK_COMPLETED = "task.completed"
    TASK_FAILED = "task.failed"
    TASK_RETRYING = "task.retrying"
    ESCALATION_REQUIRED = "escalation.required"  # a plan waits for a human's approval
    TASK_ESCALATED = "task.escalated"
    TASK_QUARANTINED = "task.quarantined"


class NotificationStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    DELIVERED = "delivered"
    DEAD = "dead"  # attempts spent; `notify retry` queues it again


class NewServiceEvent(BaseModel):
    """What happened, before the store numbers and dates it."""

    model_config = ConfigDict(frozen=True)

    kind: EventKind
    task_id: int | None = None
    task_type: str | None = None
    repository: str | None = None
    subject: str | None = None
    reason: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class ServiceEvent(NewServiceEvent):
    id: int
    at: dt.datetime

    @field_serializer("at")
    def _dump_at(self, value: dt.datetime) -> str:
        return value.isoformat()

    def public(self) -> dict[str, Any]:
        """The JSON shape of the SSE stream, `events --json` and the webhook body."""
        body = self.model_dump(mode="json")
        body["type"] = body.pop("kind")
        return body


class Notification(BaseModel):
    """One event on its way to one webhook target (named by a digest of its URL)."""

    model_config = ConfigDict(frozen=True)

    id: int
    event: ServiceEvent
    target: str
    status: NotificationStatus
    attempts: int = 0
    next_attempt_at: dt.datetime | None = None
    last_error: str | None = None
    delivered_at: dt.datetime | None = None

    @field_serializer("next_attempt_at", "delivered_at")
    def _dump_time(self, value: dt.datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    def expired(self, before: dt.datetime, dead_before: dt.datetime) -> bool:
        """Whether retention may delete it: delivered before ``before``, or dead for an event
        from before ``dead_before``. A pending one never is: the sender still owes it."""
        if self.status is NotificationStatus.DELIVERED:
            return self.delivered_at is not None and self.delivered_at < before
        return self.status is NotificationStatus.DEAD and self.event.at < dead_before

    def public(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude={"event"})
        body["event_id"] = self.event.id
        body["event_type"] = self.event.kind.value
        return body


class PrunedEvents(NamedTuple):
    """What one retention call deleted (or would delete) of the stream and the outbox."""

    events: int
    notifications: int


def expired_notifications(
    notes: Iterable[Notification], before: float, dead_before: float, limit: int
) -> list[Notification]:
    """The first ``limit`` notifications by id that retention may delete (see ``expired``)."""
    cut = dt.datetime.fromtimestamp(before, dt.UTC)
    dead_cut = dt.datetime.fromtimestamp(dead_before, dt.UTC)
    ordered = sorted(notes, key=lambda note: note.id)
    return [note for note in ordered if note.expired(cut, dead_cut)][:limit]


def unreferenced_events(
    events: Iterable[ServiceEvent], staying: Iterable[Notification], before: float, limit: int
) -> list[ServiceEvent]:
    """The first ``limit`` events by id from before ``before`` that no staying delivery needs."""
    cut = dt.datetime.fromtimestamp(before, dt.UTC)
    needed = {note.event.id for note in staying}
    ordered = sorted(events, key=lambda event: event.id)
    return [event for event in ordered if event.at < cut and event.id not in needed][:limit]
