"""Three real `tamma-trio serve` daemons on one real redis-server.

Each test starts its own redis-server (AOF on, appendfsync everysec) and three daemons with the
fake engine, whose every step takes a few milliseconds so a daemon always has tasks in flight.
What happened is read back from the store's event trail: every task must end completed, with
exactly one "completed" event, whatever was killed or restarted on the way.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import trio

from tamma_trio.models import NewTask, TaskEvent, TaskStatus
from tamma_trio.store.redis_store import RedisStore
from tests.redis_server import RedisServer
from tests.test_lifecycle import Daemon, wait_until

T = TypeVar("T")

TASKS = 3000
WITHIN = 40.0  # every wait of these tests; pytest's own limit is 60 s a test


def write_config(tmp_path: Path, url: str, name: str) -> Path:
    lines = [
        "[service]",
        "poll_interval = 0.2",
        "max_concurrent_tasks = 10",
        "lease_duration = 5",
        "shutdown_timeout = 5",
        "[service.queue]",
        'type = "redis"',
        "[service.queue.redis]",
        f"url = {json.dumps(url)}",
        'prefix = "proof"',
        "require_aof = true",
        "[service.health_check]",
        "port = 0",
        "[service.metrics]",
        "port = 0",
        "[engine]",
        'name = "tests.fake_engine:create"',
        "delay = 0.002",
        "[log]",
        'level = "warning"',
    ]
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    started = RedisServer(tmp_path / "redis").start()
    yield started
    started.stop()


@pytest.fixture
def three(tmp_path: Path, server: RedisServer) -> Iterator[list[Daemon]]:
    """Three daemons on ``server``, listening; every one is killed at the end."""
    daemons = [
        Daemon(write_config(tmp_path, server.url, f"d{n}"), name=f"d{n}").start() for n in range(3)
    ]
    try:
        for daemon in daemons:
            daemon.wait_listening()
        yield daemons
    finally:
        for daemon in daemons:
            daemon.stop()


def with_store(server: RedisServer, use: Callable[[RedisStore], Awaitable[T]]) -> T:
    """``use`` an open store of the daemons' queue, in a trio run of its own."""

    async def run() -> T:
        store = RedisStore(server.url, prefix="proof")
        async with store:
            return await use(store)

    return trio.run(run)


async def _fill(store: RedisStore) -> int:
    news = [NewTask.build("pr_review_requested", _pr(n)) for n in range(1, TASKS + 1)]
    return len(await store.add_many(news))


async def _completed(store: RedisStore) -> int:
    return (await store.stats()).by_status[TaskStatus.COMPLETED]


async def _trails(store: RedisStore) -> dict[int, list[TaskEvent]]:
    return {n: await store.events(n) for n in range(1, TASKS + 1)}


def _pr(number: int) -> dict[str, object]:
    return {"repository": "acme/widgets", "pull_request": {"number": number}}


def completed(server: RedisServer) -> int:
    return with_store(server, _completed)


def assert_each_completed_once(server: RedisServer) -> dict[int, list[TaskEvent]]:
    by_task = with_store(server, _trails)
    counts = Counter(sum(e.kind == "completed" for e in events) for events in by_task.values())
    assert counts == {1: TASKS}, counts
    return by_task


def claimers(events: list[TaskEvent]) -> list[str]:
    return [e.detail["boot_id"] for e in events if e.kind == "claimed"]


def test_three_daemons_share_the_work_and_survive_a_kill_9(
    server: RedisServer, three: list[Daemon]
) -> None:
    assert with_store(server, _fill) == TASKS
    wait_until(lambda: completed(server) >= TASKS // 3, "a third of the tasks", WITHIN)
    three[0].signal(signal.SIGKILL)

    wait_until(lambda: completed(server) == TASKS, "every task completed", WITHIN)

    by_task = assert_each_completed_once(server)
    boots = Counter(claimers(events)[-1] for events in by_task.values())
    assert len(boots) == 3, boots  # every daemon completed some
    reclaimed = [events for events in by_task.values() if "lease_expired" in _kinds(events)]
    assert reclaimed, "the killed daemon had tasks in flight"
    for events in reclaimed:
        first, *_, last = claimers(events)
        assert first != last  # finished by another daemon after the lease expired
    for daemon in three[1:]:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit() == 0


def test_a_redis_restart_mid_run_loses_and_doubles_nothing(
    server: RedisServer, three: list[Daemon]
) -> None:
    assert with_store(server, _fill) == TASKS
    wait_until(lambda: completed(server) >= TASKS // 4, "a quarter of the tasks", WITHIN)
    server.stop()
    with httpx.Client(base_url=three[1].url, timeout=5) as http:
        ready = wait_until(lambda: _not_ready(http), "/ready to report the store down", WITHIN)
        assert "store unavailable" in ready["reason"] and "unreachable" in ready["reason"]
        refused = http.post("/api/tasks", json={"type": "pr_review_requested", "payload": _pr(1)})
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert refused.json()["error"] == "store_unavailable"
        server.start()
        wait_until(lambda: http.get("/ready").status_code == 200, "/ready again", WITHIN)

    wait_until(lambda: completed(server) == TASKS, "every task completed", WITHIN)

    assert_each_completed_once(server)
    for daemon in three:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit() == 0
    assert any("claiming tasks failed" in daemon.err.read_text() for daemon in three)


def _not_ready(http: httpx.Client) -> dict[str, str] | None:
    response = http.get("/ready")
    return response.json() if response.status_code == 503 else None


def _kinds(events: list[TaskEvent]) -> list[str]:
    return [event.kind for event in events]
