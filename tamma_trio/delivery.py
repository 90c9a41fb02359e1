"""The deliveries log: one row per authenticated webhook delivery and what became of it.

An operator asking "why did the bot not react?" finds the delivery here with its outcome: the
task it created, or the reason it was ignored or refused. The delivery id is also the dedupe
key: a forge that redelivers gets the first answer again, and the body's digest tells a true
redelivery (same bytes) from a different body under a reused id.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer

# Longer free text from a forge is cut to this, so a hostile payload cannot bloat the log.
MAX_TEXT = 200


class DeliveryOutcome(StrEnum):
    QUEUED = "queued"  # tasks were stored (task_ids)
    CANCELLED = "cancelled"  # queued tasks of the subject were cancelled (task_ids)
    RETRIED = "retried"  # a failed task of the subject went back to the queue (task_ids)
    IGNORED = "ignored"  # nothing for the bot (reason)
    REFUSED = "refused"  # a command from someone who may not command the bot (reason: the rule)


def clip(text: str | None) -> str:
    if not text:
        return ""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


class DeliveryRecord(BaseModel):
    """What intake knows about a delivery when it hands it to the store."""

    model_config = ConfigDict(frozen=True)

    forge: str  # "github" | "gitlab"
    delivery_id: str = Field(min_length=1, max_length=200)
    event: str = ""
    action: str = ""
    repository: str = ""
    sender: str = ""
    outcome: DeliveryOutcome
    reason: str = ""
    body_sha256: str = ""
    task_ids: tuple[int, ...] = ()  # tasks acted on; the store adds the ones it created


class Delivery(DeliveryRecord):
    """A stored delivery: numbered in arrival order, with the time it was received."""

    id: int
    received_at: dt.datetime

    @field_serializer("received_at")
    def _dump_at(self, value: dt.datetime) -> str:
        return value.isoformat()

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"body_sha256"})
