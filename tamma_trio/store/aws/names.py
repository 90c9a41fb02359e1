"""What the AWS backend is made of, all named from one ``queue_name``, and the settings it needs.

SQS has no priorities, so each priority level has its own queue and a claim receives from the
highest level first. Every queue sends what keeps crashing consumers to one dead-letter queue.
DynamoDB holds the task records (one table) and the small coordination items (another): the
task id counter, idempotency keys and the subject locks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tamma_trio.models import TaskPriority

# Received in this order: a critical task never waits behind a low one.
PRIORITIES = tuple(sorted((int(p) for p in TaskPriority), reverse=True))

# A message received this often without its task finishing goes to the dead-letter queue. Normal
# life receives a message once per attempt (at most 11 with max_retries 10), once per lease lost
# in a crash, and once per 12 hours of waiting for a distant retry; 20 leaves room for that.
MAX_RECEIVES = 20
# SQS keeps a message at most 14 days; a task that waits for capacity must never lose its message.
RETENTION_SECONDS = 14 * 24 * 3600
# SQS's limit for one visibility timeout; a longer wait is re-delayed when the message comes back.
MAX_VISIBILITY_SECONDS = 12 * 3600
# SQS receives and sends at most ten messages per call.
SQS_BATCH = 10

# Secondary indexes of the tasks table.
INDEX_BY_STATUS = "by_status"  # (status, id): list newest first, oldest queued task
INDEX_BY_TYPE = "by_type"  # (type, id): list by type
INDEX_BY_DUE = "by_due"  # (status, due_at), keys only: next_due, expired leases, counts
INDEX_BY_SUBJECT = "by_subject"  # (subject, id): a subject's tasks newest first
INDEX_UNSENT = "unsent"  # (unsent, unsent_at), sparse: records whose message may be missing


@dataclass(frozen=True)
class AwsNames:
    """Resource names derived from ``[service.queue.sqs] queue_name``."""

    base: str

    def queue(self, priority: int) -> str:
        return f"{self.base}-p{priority}"

    @property
    def queues(self) -> dict[int, str]:
        return {priority: self.queue(priority) for priority in PRIORITIES}

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.base}-dlq"

    @property
    def tasks_table(self) -> str:
        return f"{self.base}-tasks"

    @property
    def keys_table(self) -> str:
        return f"{self.base}-keys"


def visibility_seconds(lease_seconds: float) -> int:
    """The queue's visibility timeout for a lease: whole seconds, never shorter than the lease."""
    return min(MAX_VISIBILITY_SECONDS, max(1, math.ceil(lease_seconds)))
