"""The one path from a door to the store: store the tasks, then wake the poller.

Every door (the tasks API, the CLI, the local forge, the webhooks) ends here, so "a task came
in" has one place where its source is known (for counters and logs) and one rule: the poller is
woken only after the store has committed, and only when something new was stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from tamma_trio.delivery import Delivery, DeliveryRecord
from tamma_trio.models import NewTask, Task
from tamma_trio.store.base import TaskStore

Source = Literal["api", "cli", "webhook", "forge"]


def _no_poller() -> None:
    """The CLI has no poller to wake: a running daemon sees its tasks within poll_interval."""


class Intake:
    def __init__(self, store: TaskStore, wake: Callable[[], None] = _no_poller) -> None:
        self.store = store
        self.wake = wake

    async def submit(self, news: Sequence[NewTask], *, source: Source) -> list[tuple[Task, bool]]:
        """Store ``news`` in one transaction; (task, created) for each, in order.

        A known idempotency key adds nothing and returns the existing task with created=False.
        """
        if not news:
            return []
        if len(news) == 1:
            added = [await self.store.add(news[0])]
        else:
            added = await self.store.add_many(news)
        if any(created for _task, created in added):
            self.wake()
        return added

    async def submit_delivery(
        self, record: DeliveryRecord, news: Sequence[NewTask], *, source: Source
    ) -> tuple[Delivery, list[tuple[Task, bool]]]:
        """Log a delivery and store its tasks in one transaction, then wake the poller."""
        delivery, added = await self.store.add_delivery(record, news)
        if any(created for _task, created in added):
            self.wake()
        return delivery, added

    async def submit_one(self, new: NewTask, *, source: Source) -> tuple[Task, bool]:
        (added,) = await self.submit([new], source=source)
        return added
