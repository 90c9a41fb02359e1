"""The webhook outbox's sender under MockClock: attempt times follow the backoff exactly, spent
attempts leave a dead delivery that `renotify` revives, failures are named without the URL, and
a receiver that hangs never holds up a task. HTTP goes through httpx's MockTransport here; the
tests with a real receiver on loopback are in test_notify_daemon.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import httpx
import pytest
import trio

from tamma_trio.config import Config
from tamma_trio.notify.sender import Sender
from tamma_trio.notify_config import NotifyTarget
from tamma_trio.service import Service
from tamma_trio.service_events import EventKind, NewServiceEvent, NotificationStatus
from tamma_trio.status import ServiceState
from tamma_trio.store.memory import MemoryStore
from tests.service_helpers import fake, pr_task, wait_for, zero

WALL = 1_767_225_600.0
HOOK = "http://receiver.test/hook/s3cret-path"


def wall() -> float:
    return WALL + trio.current_time()


class Script:
    """A MockTransport handler: answers from ``statuses`` (then 200), records trio times."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.times: list[float] = []
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(trio.current_time())
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore(clock=wall, boot_id="sender-test") as opened:
        yield opened


def target(**options: Any) -> NotifyTarget:
    return NotifyTarget.model_validate({"url": HOOK, **options})


async def with_sender(
    store: MemoryStore,
    hook: NotifyTarget,
    handler: Callable[[httpx.Request], Coroutine[None, None, httpx.Response]],
    body: Callable[[Sender], Awaitable[None]],
) -> None:
    sender = Sender(store, [hook], wall=wall, rng=zero, transport=httpx.MockTransport(handler))
    async with trio.open_nursery() as nursery:
        await nursery.start(sender.run)
        await body(sender)
        nursery.cancel_scope.cancel()


async def delivery_status(store: MemoryStore, status: NotificationStatus) -> bool:
    return bool(await store.notifications(status=status))


async def test_attempts_follow_the_backoff_until_delivered(
    autojump_clock: Any, store: MemoryStore
) -> None:
    script = Script(500, 503, 200)
    hook = target()

    async def body(sender: Sender) -> None:
        event = await store.publish(NewServiceEvent(kind=EventKind.TASK_FAILED), [hook.name])
        start = trio.current_time()
        sender.wake()
        await wait_for(lambda: delivery_status(store, NotificationStatus.DELIVERED))
        assert [t - start for t in script.times] == [0, 1, 3]  # then 1 s, then 2 s
        (done,) = await store.notifications()
        assert (done.attempts, done.last_error, done.event) == (2, "HTTP 503", event)
        assert {r.headers["x-tamma-event-id"] for r in script.requests} == {str(event.id)}

    await with_sender(store, hook, script, body)


async def test_spent_attempts_leave_a_dead_delivery_that_can_be_revived(
    autojump_clock: Any,
    store: MemoryStore,
) -> None:
    script = Script(500, 500, 500)
    hook = target(max_attempts=3)

    async def body(sender: Sender) -> None:
        await store.publish(NewServiceEvent(kind=EventKind.TASK_FAILED), [hook.name])
        sender.wake()
        await wait_for(lambda: delivery_status(store, NotificationStatus.DEAD))
        (dead,) = await store.notifications(status=NotificationStatus.DEAD)
        assert (dead.attempts, dead.last_error, dead.next_attempt_at) == (3, "HTTP 500", None)
        assert len(script.times) == 3
        assert await store.renotify() == 1  # as `notify retry --all` does from another process
        await wait_for(lambda: delivery_status(store, NotificationStatus.DELIVERED))
        assert len(script.times) == 4

    await with_sender(store, hook, script, body)


async def test_failures_are_named_without_the_url(autojump_clock: Any, store: MemoryStore) -> None:
    hook = target(max_attempts=1, timeout=2)
    answers: list[str] = ["refuse", "hang"]

    async def handler(request: httpx.Request) -> httpx.Response:
        if answers.pop(0) == "refuse":
            raise httpx.ConnectError(f"cannot connect to {request.url}")
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def body(sender: Sender) -> None:
        for _ in range(2):
            await store.publish(NewServiceEvent(kind=EventKind.TASK_FAILED), [hook.name])
        sender.wake()

        async def both_dead() -> bool:
            return len(await store.notifications(status=NotificationStatus.DEAD)) == 2

        await wait_for(both_dead)
        errors = sorted(d.last_error or "" for d in await store.notifications())
        assert errors == ["cannot reach the receiver (ConnectError)", "no answer within 2 s"]

    await with_sender(store, hook, handler, body)


async def test_a_delivery_to_a_target_no_longer_configured_is_dead(
    autojump_clock: Any, store: MemoryStore
) -> None:
    script = Script()

    async def body(sender: Sender) -> None:
        await store.publish(NewServiceEvent(kind=EventKind.TASK_FAILED), ["hook-removed"])
        sender.wake()
        await wait_for(lambda: delivery_status(store, NotificationStatus.DEAD))
        (dead,) = await store.notifications()
        assert dead.last_error == "the target is no longer configured" and not script.times

    await with_sender(store, target(), script, body)


async def test_a_hanging_receiver_never_holds_up_a_task(
    autojump_clock: Any, store: MemoryStore
) -> None:
    hung = trio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        hung.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    config = Config.model_validate(
        {
            "service": {"health_check": {"enabled": False}, "metrics": {"enabled": False}},
            "notify": [{"url": HOOK, "events": ["task.completed"], "timeout": 60}],
        }
    )
    daemon = Service(config, store, lambda _: fake(), wall=wall, rng=zero)
    daemon.sender.transport = httpx.MockTransport(hang)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        tasks = [(await store.add(pr_task(number)))[0] for number in (1, 2, 3)]
        daemon.poller.wake()

        async def all_completed() -> bool:
            statuses = [(await store.get(t.id)).status for t in tasks]
            return statuses == ["completed"] * 3

        with trio.fail_after(30):  # well inside the receiver's 60 s timeout
            await hung.wait()
            await wait_for(all_completed)
        daemon.request_shutdown()
        await daemon.state.wait_value(ServiceState.STOPPED)
    assert len(await store.notifications(status=NotificationStatus.PENDING)) == 3
