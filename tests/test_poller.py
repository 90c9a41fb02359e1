"""The poller while the store is unreachable: it backs off, then claims again once it answers.

A closed MemoryStore refuses every call with StoreError, like a store whose server is down; the
autojump clock lets the backoff run in no real time.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from tamma_trio.models import Task
from tamma_trio.poller import CLAIM_BACKOFF_CAP, Poller, claim_backoff
from tamma_trio.store.memory import MemoryStore
from tests.service_helpers import pr_task


def test_claim_backoff_doubles_up_to_its_cap() -> None:
    delays = [claim_backoff(n) for n in range(8)]
    assert delays[:4] == [0.0, 0.25, 0.5, 1.0]
    assert delays == sorted(delays)
    assert claim_backoff(100) == CLAIM_BACKOFF_CAP


async def test_poller_backs_off_while_the_store_is_down_and_recovers(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore(clock=trio.current_time)  # not open: every call is refused
    limiter = trio.CapacityLimiter(2)
    poller = Poller(store, limiter, poll_interval=0.5, lease_seconds=30)
    started: list[Task] = []
    got_one = trio.Event()

    def start(task: Task, slot: object) -> None:
        started.append(task)
        limiter.release_on_behalf_of(slot)
        got_one.set()

    async def keep_waking() -> None:
        while True:  # wake-ups during the outage must not cut the backoff short
            poller.wake()
            await trio.sleep(0.01)

    caplog.set_level(logging.INFO, logger="tamma_trio.poller")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keep_waking)
        await nursery.start(poller.run, start)
        # failures at 0, 0.25, 0.75, 1.75 and 3.75 s; the sixth would come at 7.75 s
        await trio.sleep(3.8)
        assert poller.failures == 5
        assert started == []

        async with store:
            await store.add(pr_task(1))
            await got_one.wait()
            assert poller.failures == 0
            nursery.cancel_scope.cancel()

    assert [task.status for task in started] == ["in_progress"]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("claiming tasks failed" in m for m in messages) == 1  # first failure only
    assert any("claiming works again after" in m for m in messages)
