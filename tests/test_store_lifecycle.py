"""The TaskStore contract (store/base.py), part 2: leases, crashes, operator actions, the trail.

Runs against every backend of tests.store_helpers.STORE_BACKENDS; part 1 is
test_store_contract.py.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

from tamma_trio.errors import LeaseLostError, StoreError, TaskNotFoundError, TransitionError
from tamma_trio.models import TaskStatus
from tamma_trio.store.base import TaskStore
from tamma_trio.store.lifecycle import lease_lost, quarantine_error
from tests.store_helpers import SINGLE_DAEMON_BACKENDS, at, claim_one, kinds

if TYPE_CHECKING:
    from tests.store_helpers import FakeWall, StoreFactory, TaskBuilder


# --- the lease ------------------------------------------------------------------------------


LEASED_CALLS: dict[str, Any] = {
    "complete": lambda s, i, t: s.complete(i, t, {"action": "done"}),
    "retry_later": lambda s, i, t: s.retry_later(i, t, "boom", 2e9),
    "retry_later_deferred": lambda s, i, t: s.retry_later(i, t, "rate limit", 2e9, defer=True),
    "fail": lambda s, i, t: s.fail(i, t, "boom"),
    "release": lambda s, i, t: s.release(i, t, "shutdown"),
    "save_progress": lambda s, i, t: s.save_progress(i, t, {"step": "plan"}),
}


@pytest.mark.parametrize("call", sorted(LEASED_CALLS))
async def test_leased_calls_check_the_token(
    store: TaskStore, make_task: TaskBuilder, call: str
) -> None:
    task, _ = await store.add(make_task())
    claimed = await claim_one(store)
    before = await store.events(task.id)

    with pytest.raises(LeaseLostError, match=f"task {task.id} is no longer held"):
        await LEASED_CALLS[call](store, task.id, "not-the-token")
    with pytest.raises(TaskNotFoundError):
        await LEASED_CALLS[call](store, 999, claimed.lease_token)

    assert await store.get(task.id) == claimed
    assert await store.events(task.id) == before


async def test_a_stale_token_cannot_complete_a_reclaimed_task(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    task, _ = await store.add(make_task())
    old = await claim_one(store)
    await store.release(task.id, old.lease_token or "", "lease handback")
    new = await claim_one(store)
    assert new.lease_token != old.lease_token

    with pytest.raises(LeaseLostError):
        await store.complete(task.id, old.lease_token or "", {"by": "old"})
    await store.complete(task.id, new.lease_token or "", {"by": "new"})

    assert (await store.get(task.id)).result == {"by": "new"}
    assert await kinds(store, task.id) == [
        "enqueued",
        "claimed",
        "released",
        "claimed",
        "completed",
    ]


async def test_complete_records_the_result_and_drops_the_lease(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    task, _ = await store.add(make_task())
    claimed = await claim_one(store)
    wall.advance(3)

    await store.complete(task.id, claimed.lease_token or "", {"action": "pr_created"})

    done = await store.get(task.id)
    assert (done.status, done.result, done.attempts) == ("completed", {"action": "pr_created"}, 1)
    assert done.finished_at == at(wall.start + 3)
    assert (done.lease_owner, done.lease_token, done.lease_expires) == (None, None, None)


async def test_retry_later_spends_the_attempt_and_keeps_the_error(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    task, _ = await store.add(make_task())
    claimed = await claim_one(store)

    await store.retry_later(task.id, claimed.lease_token or "", "timeout", wall.start + 9)

    again = await store.get(task.id)
    assert (again.status, again.attempts, again.error) == ("queued", 1, "timeout")
    assert again.not_before == at(wall.start + 9)
    assert again.lease_token is None
    event = (await store.events(task.id))[-1]
    assert (event.kind, event.detail["error"], event.detail["attempt"]) == (
        "retry_scheduled",
        "timeout",
        1,
    )


async def test_fail_ends_the_task_with_its_error(store: TaskStore, make_task: TaskBuilder) -> None:
    task, _ = await store.add(make_task())
    claimed = await claim_one(store)

    await store.fail(task.id, claimed.lease_token or "", "not retryable")

    failed = await store.get(task.id)
    assert (failed.status, failed.error, failed.lease_token) == ("failed", "not retryable", None)
    assert failed.finished_at is not None
    assert await store.claim(1) == []


async def test_release_refunds_the_attempt_and_requeues_now(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    task, _ = await store.add(make_task())
    claimed = await claim_one(store)
    wall.advance(20)

    await store.release(task.id, claimed.lease_token or "", "shutdown")

    released = await store.get(task.id)
    assert (released.status, released.attempts, released.lease_token) == ("queued", 0, None)
    assert released.not_before == at(wall.start + 20)
    event = (await store.events(task.id))[-1]
    assert (event.kind, event.status, event.detail) == (
        "released",
        "queued",
        {"reason": "shutdown"},
    )
    assert (await claim_one(store)).attempts == 1


async def test_extend_leases_answers_with_the_tokens_still_held(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    await store.add_many([make_task(1), make_task(2)])
    kept, cancelled = await store.claim(2)
    await store.cancel(cancelled.id, actor="alice")
    wall.advance(50)

    held = await store.extend_leases(
        [kept.lease_token or "", cancelled.lease_token or "", "unknown"], lease_seconds=60
    )

    assert held == {kept.lease_token}
    extended = await store.get(kept.id)
    assert extended.lease_expires == at(wall.start + 110)


async def test_progress_is_saved_and_survives_a_release(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    task, _ = await store.add(make_task())
    claimed = await claim_one(store)
    await store.save_progress(task.id, claimed.lease_token or "", {"analysis": {"ok": True}})
    await store.release(task.id, claimed.lease_token or "", "shutdown")

    assert (await claim_one(store)).progress == {"analysis": {"ok": True}}


# --- crashes --------------------------------------------------------------------------------


async def test_orphans_of_an_older_boot_are_requeued_with_the_attempt_refunded(
    single_daemon_store: TaskStore,
    single_daemon_factory: StoreFactory,
    make_task: TaskBuilder,
    wall: FakeWall,
) -> None:
    store = single_daemon_store
    orphan, _ = await store.add(make_task(1))
    await claim_one(store)
    later = single_daemon_factory(clock=wall, boot_id="boot-b")
    async with later:
        await later.add(make_task(2))
        own = await claim_one(later)

        recovered = await later.recover_orphans()

        assert [t.id for t in recovered] == [orphan.id]
        again = await later.get(orphan.id)
        assert (again.status, again.attempts, again.interruptions) == ("queued", 0, 1)
        assert again.lease_owner is None
        assert (await later.get(own.id)).status == "in_progress"
        event = (await later.events(orphan.id))[-1]
        assert (event.kind, event.actor, event.status) == ("orphan_recovered", "daemon", "queued")
        assert event.detail == {"previous_owner": "boot-a", "interruptions": 1}
        assert await later.recover_orphans() == []


async def test_a_task_that_keeps_crashing_the_daemon_is_quarantined(
    single_daemon_store: TaskStore,
    single_daemon_factory: StoreFactory,
    make_task: TaskBuilder,
    wall: FakeWall,
) -> None:
    store = single_daemon_store
    task, _ = await store.add(make_task())
    await claim_one(store)
    for boot in ("boot-b", "boot-c"):
        restarted = single_daemon_factory(clock=wall, boot_id=boot, quarantine_after=2)
        async with restarted:
            recovered = await restarted.recover_orphans()
            if boot == "boot-b":
                assert recovered[0].status == "queued"
                await claim_one(restarted)  # and crashes again

    [quarantined] = recovered
    assert (quarantined.id, quarantined.status, quarantined.interruptions) == (task.id, "failed", 2)
    assert (
        quarantined.error == quarantine_error(2) == "quarantined: interrupted by 2 daemon crashes"
    )
    assert quarantined.finished_at is not None
    assert (await kinds(store, task.id))[-1] == "quarantined"
    assert (await store.retry(task.id)).interruptions == 0  # the operator gives a fresh budget


async def test_single_daemon_says_which_rules_apply(
    store: TaskStore, store_factory: StoreFactory
) -> None:
    assert store.single_daemon is (store_factory.backend in SINGLE_DAEMON_BACKENDS)


async def test_a_shared_store_refuses_the_single_host_rules(
    shared_factory: StoreFactory, make_task: TaskBuilder, wall: FakeWall
) -> None:
    """Where daemons share the store, another boot's task is running, not orphaned."""
    first, other = (shared_factory(clock=wall, boot_id=boot) for boot in ("boot-a", "boot-b"))
    with pytest.raises(StoreError, match="no one-daemon lock"):
        other.lock_for_daemon()
    async with first, other:
        await first.add(make_task())
        running = await claim_one(first)
        with pytest.raises(StoreError, match="only an expired lease frees it"):
            await other.recover_orphans()
        assert await other.get(running.id) == running


# --- operator actions -----------------------------------------------------------------------


async def test_cancel_a_queued_task(store: TaskStore, make_task: TaskBuilder) -> None:
    task, _ = await store.add(make_task())

    cancelled = await store.cancel(task.id, actor="alice")

    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert await store.claim(1) == []
    event = (await store.events(task.id))[-1]
    assert (event.kind, event.actor, event.detail) == (
        "cancelled",
        "alice",
        {"previous_status": "queued"},
    )


async def test_cancelling_a_running_task_takes_its_lease_away(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    task, _ = await store.add(make_task())
    claimed = await claim_one(store)

    cancelled = await store.cancel(task.id)

    assert (cancelled.lease_owner, cancelled.lease_token, cancelled.lease_expires) == (None,) * 3
    with pytest.raises(LeaseLostError, match="cancelled"):
        await store.complete(task.id, claimed.lease_token or "", {})
    assert (await store.get(task.id)).status == "cancelled"


@pytest.mark.parametrize("final", ["completed", "failed", "cancelled"])
async def test_cancel_refuses_a_finished_task_and_writes_nothing(
    store: TaskStore, make_task: TaskBuilder, final: str
) -> None:
    task, _ = await store.add(make_task())
    token = (await claim_one(store)).lease_token or ""
    if final == "completed":
        await store.complete(task.id, token, {})
    elif final == "failed":
        await store.fail(task.id, token, "gave up")
    else:
        await store.cancel(task.id)
    before = (await store.get(task.id), await store.events(task.id))

    with pytest.raises(TransitionError, match=f"a {final} task cannot become cancelled"):
        await store.cancel(task.id)

    assert (await store.get(task.id), await store.events(task.id)) == before


@pytest.mark.parametrize("how", ["fail", "cancel"])
async def test_retry_gives_a_fresh_budget(
    store: TaskStore, make_task: TaskBuilder, how: str
) -> None:
    task, _ = await store.add(make_task())
    claimed = await claim_one(store)
    if how == "fail":
        await store.fail(task.id, claimed.lease_token or "", "gave up")
    else:
        await store.cancel(task.id)

    again = await store.retry(task.id, actor="bob")

    assert (again.status, again.attempts, again.error, again.finished_at) == (
        "queued",
        0,
        None,
        None,
    )
    event = (await store.events(task.id))[-1]
    assert (event.kind, event.actor, event.detail["previous_status"]) == (
        "retried",
        "bob",
        "failed" if how == "fail" else "cancelled",
    )
    assert (await claim_one(store)).id == task.id


async def test_retry_refuses_tasks_that_are_not_failed_or_cancelled(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    added = await store.add_many([make_task(1), make_task(2), make_task(3)])
    queued, running, done = (task.id for task, _ in added)
    leases = {task.id: task.lease_token or "" for task in await store.claim(3)}
    await store.release(queued, leases[queued], "test")
    await store.complete(done, leases[done], {})

    for task_id, status in ((queued, "queued"), (running, "in_progress"), (done, "completed")):
        before = (await store.get(task_id), await store.events(task_id))
        with pytest.raises(TransitionError, match=f"this one is {status}"):
            await store.retry(task_id)
        assert (await store.get(task_id), await store.events(task_id)) == before


# --- the audit trail ---------------------------------------------------------------------


async def test_every_status_change_leaves_an_event(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    task, _ = await store.add(make_task(actor="cli"))
    first = await claim_one(store)
    await store.record_event(task.id, "approval", {"verdict": "auto", "reasons": []})
    await store.retry_later(task.id, first.lease_token or "", "flaky", wall.start)
    second = await claim_one(store)
    wall.advance(1)
    await store.fail(task.id, second.lease_token or "", "still flaky")
    await store.retry(task.id, actor="ops")

    events = await store.events(task.id)

    trail = [(e.kind, e.actor, e.status) for e in events]
    assert trail == [
        ("enqueued", "cli", TaskStatus.QUEUED),
        ("claimed", "worker", TaskStatus.IN_PROGRESS),
        ("approval", "worker", None),
        ("retry_scheduled", "worker", TaskStatus.QUEUED),
        ("claimed", "worker", TaskStatus.IN_PROGRESS),
        ("failed", "worker", TaskStatus.FAILED),
        ("retried", "ops", TaskStatus.QUEUED),
    ]
    assert events[2].detail == {"verdict": "auto", "reasons": []}
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert events[-1].at - events[0].at == dt.timedelta(seconds=1)


def test_lease_lost_names_the_current_status() -> None:
    assert "it is completed now" in str(lease_lost(3, TaskStatus.COMPLETED))
