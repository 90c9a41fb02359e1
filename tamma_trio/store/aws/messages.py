"""The SQS side: one queue per priority level, messages that carry only a task id.

A message is a hint that a task may be due; DynamoDB decides. So changing a message's
visibility or deleting it is advisory: a stale receipt handle (the message came back and
someone else holds it) is logged and ignored, and deletes of finished tasks' messages are
buffered and sent ten at a time, because a message of a finished task is dropped on receipt
anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from tamma_trio.errors import StoreError
from tamma_trio.store.aws.client import Runner, describe
from tamma_trio.store.aws.names import PRIORITIES, SQS_BATCH, AwsNames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One received message; ``task_id`` is None when its body is not a task id."""

    priority: int
    message_id: str
    receipt: str
    task_id: int | None


class Messages:
    """Send, receive, delay and delete task messages on the priority queues."""

    def __init__(self, sqs: Any, names: AwsNames, runner: Runner) -> None:
        self.sqs = sqs
        self.names = names
        self.runner = runner
        self.urls: dict[int, str] = {}
        self._deletes: list[Message] = []

    async def open(self) -> None:
        for priority, name in self.names.queues.items():
            answer = await self.runner.run(
                f"finding queue {name}", partial(self.sqs.get_queue_url, QueueName=name)
            )
            self.urls[priority] = str(answer["QueueUrl"])

    async def send(self, tasks: Iterable[tuple[int, int]]) -> None:
        """Send one message per (task id, priority), ten per call."""
        by_queue: dict[int, list[int]] = {}
        for task_id, priority in tasks:
            by_queue.setdefault(priority, []).append(task_id)
        for priority, ids in by_queue.items():
            for start in range(0, len(ids), SQS_BATCH):
                await self._send_batch(priority, ids[start : start + SQS_BATCH])

    async def _send_batch(self, priority: int, ids: Sequence[int]) -> None:
        entries = [{"Id": str(n), "MessageBody": str(task_id)} for n, task_id in enumerate(ids)]
        answer = await self.runner.run(
            "sending task messages",
            lambda: self.sqs.send_message_batch(QueueUrl=self.urls[priority], Entries=entries),
        )
        if answer.get("Failed"):
            reasons = {f.get("Code", "error") for f in answer["Failed"]}
            raise StoreError(f"sending task messages failed: {', '.join(sorted(reasons))}")

    async def receive(self, priority: int, count: int, visibility: int) -> list[Message]:
        """Up to ``count`` (at most 10) visible messages, hidden from others for ``visibility``."""
        answer = await self.runner.run(
            "receiving task messages",
            lambda: self.sqs.receive_message(
                QueueUrl=self.urls[priority],
                MaxNumberOfMessages=min(count, SQS_BATCH),
                VisibilityTimeout=visibility,
                WaitTimeSeconds=0,
            ),
        )
        return [_message(priority, raw) for raw in answer.get("Messages", [])]

    async def hide(self, messages: Sequence[Message], seconds: int) -> None:
        """Make messages invisible for ``seconds`` from now (0: visible at once)."""
        for priority in PRIORITIES:
            mine = [m for m in messages if m.priority == priority]
            for start in range(0, len(mine), SQS_BATCH):
                entries = [
                    {"Id": str(n), "ReceiptHandle": m.receipt, "VisibilityTimeout": seconds}
                    for n, m in enumerate(mine[start : start + SQS_BATCH])
                ]
                await self._advisory(
                    "changing message visibility",
                    partial(
                        self.sqs.change_message_visibility_batch,
                        QueueUrl=self.urls[priority],
                        Entries=entries,
                    ),
                )

    def drop(self, message: Message) -> None:
        """Delete ``message`` with the next flush."""
        self._deletes.append(message)

    async def flush(self) -> None:
        """Delete the buffered messages, ten per call."""
        pending, self._deletes = self._deletes, []
        for priority in PRIORITIES:
            mine = [m for m in pending if m.priority == priority]
            for start in range(0, len(mine), SQS_BATCH):
                entries = [
                    {"Id": str(n), "ReceiptHandle": m.receipt}
                    for n, m in enumerate(mine[start : start + SQS_BATCH])
                ]
                await self._advisory(
                    "deleting messages",
                    partial(
                        self.sqs.delete_message_batch, QueueUrl=self.urls[priority], Entries=entries
                    ),
                )

    async def _advisory(self, what: str, call: Any) -> None:
        """A call whose failure costs a duplicate receipt later, never correctness."""
        try:
            answer = await self.runner.raw(call)
        except Exception as exc:
            log.warning("%s failed: %s", what, describe(exc))
            return
        for failed in answer.get("Failed", []):
            log.debug("%s: %s", what, failed.get("Code"))


def _message(priority: int, raw: dict[str, Any]) -> Message:
    body = str(raw.get("Body", ""))
    task_id = int(body) if body.isdigit() else None
    return Message(priority, str(raw["MessageId"]), str(raw["ReceiptHandle"]), task_id)
