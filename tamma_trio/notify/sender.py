"""The webhook outbox's sender: delivers pending deliveries, retrying with backoff.

Everything it knows is in the store (each delivery's attempts and next attempt time), so a
restart carries on where the last run stopped: a delivery in flight at a crash is simply sent
again, which at-least-once allows and the event id lets the receiver detect. The delay before
attempt n+1 is min(base * 2**(n-1), max) less up to 20% jitter, so receivers coming back up are
not hit by every daemon at once; after a target's max_attempts the delivery is dead until an
operator retries it. It runs beside the workers and shares nothing with them.
"""

from __future__ import annotations

import logging
import operator
import random
from collections.abc import Callable, Sequence
from functools import partial

import httpx
import trio
from trio_util import AsyncValue

from tamma_trio.notify import delivery as wire
from tamma_trio.notify_config import NotifyTarget
from tamma_trio.service_events import Notification, NotificationStatus
from tamma_trio.store.base import TaskStore, WallClock

log = logging.getLogger(__name__)

BATCH = 50
CONCURRENCY = 4
BASE_DELAY = 1.0
MAX_DELAY = 300.0


def backoff(attempt: int, rng: Callable[[], float]) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based)."""
    delay: float = min(BASE_DELAY * 2 ** (attempt - 1), MAX_DELAY)
    return delay * (1 - 0.2 * rng())


class Sender:
    def __init__(
        self,
        store: TaskStore,
        targets: Sequence[NotifyTarget],
        *,
        wall: WallClock,
        rng: Callable[[], float] = random.random,
        transport: httpx.AsyncBaseTransport | None = None,
        poll_interval: float = 5.0,
    ) -> None:
        self.store = store
        self.targets = {target.name: target for target in targets}
        self.wall = wall
        self.rng = rng
        self.transport = transport
        # Deliveries requeued by `notify retry` in another process are seen this late at most.
        self.poll_interval = poll_interval
        self.generation = AsyncValue(0)
        self.limiter = trio.CapacityLimiter(CONCURRENCY)

    def wake(self) -> None:
        """A delivery was queued: look at the outbox now instead of at the next due time."""
        self.generation.value += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with httpx.AsyncClient(transport=self.transport, follow_redirects=False) as client:
            task_status.started()
            while True:
                seen = self.generation.value
                try:
                    next_due = await self.deliver_due(client)
                except Exception as exc:  # the store is down: try again a little later
                    log.warning("webhook outbox unavailable: %s", exc)
                    next_due = self.wall() + BASE_DELAY
                wait = self.poll_interval
                if next_due is not None:
                    wait = min(max(next_due - self.wall(), 0), wait)
                deadline = trio.current_time() + wait
                with trio.move_on_at(deadline):
                    await self.generation.wait_value(partial(operator.ne, seen))

    async def deliver_due(self, client: httpx.AsyncClient) -> float | None:
        """Send every due delivery; the wall time of the next one due later, or None."""
        while True:
            pending = await self.store.notifications(status=NotificationStatus.PENDING, limit=BATCH)
            now = self.wall()
            due = [d for d in pending if _due_at(d) <= now]
            if not due:
                return _due_at(pending[0]) if pending else None
            async with trio.open_nursery() as nursery:
                for item in due:
                    nursery.start_soon(self._attempt, client, item)

    async def _attempt(self, client: httpx.AsyncClient, item: Notification) -> None:
        async with self.limiter:
            target = self.targets.get(item.target)
            if target is None:
                error: str | None = "the target is no longer configured"
                attempts_left = False
            else:
                error = await self._post(client, item, target)
                attempts_left = item.attempts + 1 < target.max_attempts
            next_attempt = None
            if error is not None and attempts_left:
                next_attempt = self.wall() + backoff(item.attempts + 1, self.rng)
            await self.store.record_notification(item.id, error=error, next_attempt=next_attempt)
            if error is not None:
                fate = "retry later" if next_attempt else "dead"
                log.warning(
                    "webhook delivery %d (%s) failed: %s; %s", item.id, item.target, error, fate
                )

    async def _post(
        self, client: httpx.AsyncClient, item: Notification, target: NotifyTarget
    ) -> str | None:
        """None when the receiver took it (2xx), else why not (never the URL: it is secret)."""
        raw = wire.body(item.event, target)
        # A total deadline: httpx's timeout bounds each read, not a receiver that trickles.
        with trio.move_on_after(target.timeout):
            try:
                response = await client.post(
                    target.url.get_secret_value(),
                    content=raw,
                    headers=wire.headers(item.event, item.id, raw, target),
                    timeout=target.timeout,
                )
            except httpx.TimeoutException:
                pass
            except httpx.TransportError as exc:
                return f"cannot reach the receiver ({type(exc).__name__})"
            else:
                return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return f"no answer within {target.timeout:g} s"


def _due_at(item: Notification) -> float:
    return item.next_attempt_at.timestamp() if item.next_attempt_at else 0.0
