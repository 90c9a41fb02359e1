"""The TaskStore contract, deliveries part: the webhook deliveries log and per-subject reads.

Runs against every backend of tests.store_helpers.STORE_BACKENDS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tamma_trio.delivery import DeliveryOutcome, DeliveryRecord
from tamma_trio.store.base import TaskStore
from tests.store_helpers import at

if TYPE_CHECKING:
    from tests.store_helpers import FakeWall, StoreFactory, TaskBuilder


def record(delivery_id: str = "d-1", **changes: object) -> DeliveryRecord:
    fields: dict[str, object] = {
        "forge": "github",
        "delivery_id": delivery_id,
        "event": "issues",
        "action": "assigned",
        "repository": "acme/widgets",
        "sender": "octocat",
        "outcome": DeliveryOutcome.QUEUED,
        "body_sha256": "ab" * 32,
    }
    return DeliveryRecord.model_validate({**fields, **changes})


async def test_a_delivery_and_its_tasks_are_stored_together(
    store: TaskStore, make_task: TaskBuilder, wall: FakeWall
) -> None:
    delivery, added = await store.add_delivery(record(), [make_task(1, key="github:d-1")])

    [(task, created)] = added
    assert created and task.key == "github:d-1" and await store.get(task.id) == task
    assert delivery.task_ids == (task.id,) and delivery.received_at == at(wall.start)
    assert (delivery.forge, delivery.delivery_id, delivery.outcome) == ("github", "d-1", "queued")
    assert await store.get_delivery("github", "d-1") == delivery
    assert await store.get_delivery("gitlab", "d-1") is None


async def test_a_known_delivery_adds_nothing_and_returns_the_first(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    first, _ = await store.add_delivery(record(), [make_task(1, key="github:d-1")])
    again, added = await store.add_delivery(
        record(outcome=DeliveryOutcome.IGNORED, body_sha256="cd" * 32), [make_task(2)]
    )

    assert again == first and added == []
    assert len(await store.list_tasks()) == 1
    assert [d.delivery_id for d in await store.list_deliveries()] == ["d-1"]


async def test_the_same_id_from_two_forges_is_two_deliveries(store: TaskStore) -> None:
    await store.add_delivery(record(), [])
    await store.add_delivery(record(forge="gitlab"), [])
    assert [d.forge for d in await store.list_deliveries()] == ["gitlab", "github"]


async def test_task_ids_keep_the_acted_on_tasks_and_add_tasks_found_by_key(
    store: TaskStore, make_task: TaskBuilder
) -> None:
    existing, _ = await store.add(make_task(1, key="k"))
    delivery, added = await store.add_delivery(
        record(outcome=DeliveryOutcome.CANCELLED, task_ids=(99,)), [make_task(1, key="k")]
    )
    assert added == [(existing, False)] and delivery.task_ids == (99, existing.id)


async def test_deliveries_are_listed_newest_first_and_paged(
    store: TaskStore, wall: FakeWall
) -> None:
    for number in range(5):
        await store.add_delivery(record(f"d-{number}", reason=f"r{number}"), [])
        wall.advance(1)
    page = await store.list_deliveries(limit=2, offset=1)
    assert [d.delivery_id for d in page] == ["d-3", "d-2"]
    assert [d.reason for d in page] == ["r3", "r2"]


async def test_pruning_forgets_deliveries_received_before_a_time(
    store: TaskStore, wall: FakeWall
) -> None:
    await store.add_delivery(record("old"), [])
    wall.advance(100)
    await store.add_delivery(record("new"), [])

    assert await store.prune_deliveries(wall.start + 50) == 1
    assert [d.delivery_id for d in await store.list_deliveries()] == ["new"]
    assert await store.get_delivery("github", "old") is None
    assert await store.prune_deliveries(wall.start + 50) == 0


async def test_tasks_of_a_subject_newest_first(store: TaskStore, make_task: TaskBuilder) -> None:
    one, _ = await store.add(make_task(7))
    await store.add(make_task(8))
    two, _ = await store.add(make_task(7, key="again"))
    await store.cancel(one.id)

    found = await store.tasks_of_subject("acme/widgets#7")
    assert [task.id for task in found] == [two.id, one.id]
    assert found[1].status == "cancelled"
    assert [t.id for t in await store.tasks_of_subject("acme/widgets#7", limit=1)] == [two.id]
    assert await store.tasks_of_subject("acme/widgets#9") == []


async def test_deliveries_survive_a_restart(
    store_factory: StoreFactory, store: TaskStore, wall: FakeWall
) -> None:
    first, _ = await store.add_delivery(record(), [])
    again = store_factory(clock=wall, boot_id="boot-b")
    async with again:
        assert await again.get_delivery("github", "d-1") == first
