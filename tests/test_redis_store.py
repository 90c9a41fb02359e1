"""What only the Redis store has: several daemons on one server, its durability, its failures.

The contract itself runs on Redis in test_store_contract.py and test_store_lifecycle.py; these
tests use the session's real redis-server (conftest), or start their own when they need other
server settings, and several RedisStore instances stand for several daemons.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import redis
import trio

from tamma_trio.config import QueueConfig, RedisQueueConfig, load_config
from tamma_trio.errors import ConfigError, LeaseLostError, StoreError
from tamma_trio.store import open_store
from tamma_trio.store.redis_store import RedisStore
from tests.redis_server import RedisServer, free_port
from tests.store_helpers import FakeWall, StoreFactory, TaskBuilder, claim_one, kinds


@pytest.fixture
def factory(redis_server: RedisServer, tmp_path: Path) -> StoreFactory:
    return StoreFactory(backend="redis", path=tmp_path / "unused.db", redis_url=redis_server.url)


@pytest.fixture
async def daemons(factory: StoreFactory, wall: FakeWall) -> AsyncIterator[list[RedisStore]]:
    """Three stores on one prefix, as three daemons see the shared queue."""
    stores = [factory(clock=wall, boot_id=f"boot-{n}") for n in range(3)]
    async with AsyncExitStack() as opened:
        for store in stores:
            await opened.enter_async_context(store)
        yield stores  # type: ignore[misc]


async def test_daemons_racing_for_tasks_claim_each_exactly_once(
    daemons: list[RedisStore], make_task: TaskBuilder
) -> None:
    await daemons[0].add_many([make_task(n) for n in range(1, 301)])
    done: dict[int, str] = {}

    async def worker(store: RedisStore) -> None:
        while batch := await store.claim(4):
            for task in batch:
                assert task.id not in done
                done[task.id] = store.boot_id
                await store.complete(task.id, task.lease_token or "", {"by": store.boot_id})

    async with trio.open_nursery() as nursery:
        for store in daemons:
            for _ in range(5):
                nursery.start_soon(worker, store)

    assert sorted(done) == list(range(1, 301))
    assert len(set(done.values())) == 3  # every daemon took part
    for task_id in (1, 150, 300):
        assert await kinds(daemons[2], task_id) == ["enqueued", "claimed", "completed"]


async def test_an_expired_lease_is_reclaimed_once_by_any_daemon(
    daemons: list[RedisStore], make_task: TaskBuilder, wall: FakeWall
) -> None:
    await daemons[0].add_many([make_task(1), make_task(2)])
    first, second = await daemons[0].claim(2, lease_seconds=10)
    wall.advance(8)
    assert await daemons[0].extend_leases([second.lease_token or ""], 10) == {second.lease_token}
    wall.advance(3)  # the first lease expired a second ago, the renewed one has 7 s left

    results = [await store.reclaim_expired() for store in daemons[1:]]

    assert [[t.id for t in found] for found in results] == [[first.id], []]
    [again] = results[0]
    assert (again.status, again.attempts, again.interruptions) == ("queued", 0, 1)
    event = (await daemons[2].events(first.id))[-1]
    assert (event.kind, event.actor, event.detail["previous_owner"]) == (
        "lease_expired",
        "daemon",
        "boot-0",
    )
    with pytest.raises(LeaseLostError):
        await daemons[0].complete(first.id, first.lease_token or "", {"late": True})
    retaken = await claim_one(daemons[2])
    assert (retaken.id, retaken.lease_owner) == (first.id, "boot-2")
    assert (await daemons[1].get(second.id)).lease_token == second.lease_token


async def test_scripts_are_loaded_again_after_the_server_forgets_them(
    daemons: list[RedisStore], make_task: TaskBuilder, redis_server: RedisServer
) -> None:
    await daemons[0].add(make_task(1))
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.script_flush()
    finally:
        client.close()

    claimed = await claim_one(daemons[1])  # NOSCRIPT, then loaded and run
    assert claimed.id == 1


async def test_an_unreachable_server_is_a_store_error_without_the_password(
    wall: FakeWall,
) -> None:
    store = RedisStore(f"redis://:pa55word@127.0.0.1:{free_port()}/0", clock=wall)
    with pytest.raises(StoreError, match=r"redis 127\.0\.0\.1:\d+/0: unreachable") as caught:
        async with store:
            pass
    assert "pa55word" not in str(caught.value)
    with pytest.raises(StoreError, match="not open"):
        await store.ping()


async def test_a_server_restart_is_survived_with_the_data_in_its_aof(
    tmp_path: Path, wall: FakeWall, make_task: TaskBuilder
) -> None:
    server = RedisServer(tmp_path / "own").start()
    try:
        async with RedisStore(server.url, clock=wall) as store:
            task, _ = await store.add(make_task(1))
            server.stop()
            with pytest.raises(StoreError, match="unreachable"):
                await store.ping()
            server.start()
            assert await store.get(task.id) == task  # the pool reconnects on its own
    finally:
        server.stop()


async def test_durability_is_logged_and_require_aof_refuses_a_server_without_it(
    tmp_path: Path, wall: FakeWall, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tamma_trio.store.redis_server")
    with_aof = RedisServer(tmp_path / "aof").start()
    without = RedisServer(tmp_path / "plain", appendonly=False).start()
    try:
        async with RedisStore(with_aof.url, require_aof=True, clock=wall):
            pass
        assert "appendfsync everysec: up to about one second" in caplog.text

        refused = RedisStore(without.url, require_aof=True, clock=wall)
        with pytest.raises(StoreError, match=r"appendonly no, and .*require_aof is set"):
            async with refused:
                pass
        evicting = redis.Redis.from_url(without.url)
        evicting.config_set("maxmemory-policy", "allkeys-lru")
        evicting.close()
        async with RedisStore(without.url, clock=wall):
            pass
        assert "appendonly no: tasks acknowledged since the last RDB snapshot" in caplog.text
        evictions = [r.getMessage() for r in caplog.records if "may evict tasks" in r.getMessage()]
        assert len(evictions) == 1 and "maxmemory-policy allkeys-lru" in evictions[0]
    finally:
        with_aof.stop()
        without.stop()


async def test_a_store_of_another_schema_is_refused(
    redis_server: RedisServer, wall: FakeWall
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.hset("{future}:meta", "schema", "99")
    finally:
        client.close()
    store = RedisStore(redis_server.url, prefix="future", clock=wall)
    with pytest.raises(StoreError, match="schema 99"):
        async with store:
            pass


def test_config_builds_the_redis_store_and_never_shows_the_url(tmp_path: Path) -> None:
    secret_url = "redis://:pw-secret@10.0.0.5:6380/2"
    queue = QueueConfig(
        type="redis",
        redis=RedisQueueConfig(url=secret_url, prefix="team-a", require_aof=True),
    )
    store = open_store(queue, boot_id="b")
    assert isinstance(store, RedisStore)
    assert (store.boot_id, store.require_aof, store.single_daemon) == ("b", True, False)
    assert "pw-secret" not in repr(queue)

    config_file = tmp_path / "tamma.toml"
    config_file.write_text('[service.queue.redis]\nprefix = "bad prefix{"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(config_file, env={})
    [(where, value, _message)] = caught.value.problems
    assert (where, value) == ("service.queue.redis.prefix", "'bad prefix{'")
