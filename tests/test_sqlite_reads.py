"""Reads on their own connections, and the writer's bounded queue, on a real SQLite file.

Another connection holding the write lock (as a CLI or a backup would) keeps the writer
thread's batch waiting; whatever the test asserts happens while that batch is held.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from tamma_trio.config import GithubWebhookConfig, ServiceConfig, WebhooksConfig
from tamma_trio.errors import StoreBusyError
from tamma_trio.models import NewTask
from tamma_trio.store.sqlite import SqliteStore
from tamma_trio.store.sqlite_runner import MAX_BATCH
from tamma_trio.web import create_app
from tests import webhook_payloads as gh
from tests.web_fixtures import LOOPBACK, make_deps

# Long enough that a read queued behind the held batch would still be waiting when the test
# releases the lock, short enough that such a regression fails instead of hanging the suite.
BUSY_TIMEOUT = 20.0
QUEUE = 3


@contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Hold the file's write lock from another connection until the block ends."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


def task(number: int) -> NewTask:
    return NewTask.build("issue_assigned", {"repository": gh.REPO, "issue": {"number": number}})


async def test_reads_complete_while_a_write_batch_is_held(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    async with SqliteStore(path, busy_timeout=BUSY_TIMEOUT) as store:
        first, _ = await store.add(task(1))
        added: list[int] = []

        async def add_second() -> None:
            second, _ = await store.add(task(2))
            added.append(second.id)

        with write_lock(path) as lock:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(add_second)
                await trio.testing.wait_all_tasks_blocked()  # queued: the writer waits
                listed = [t.id for t in await store.list_tasks()]
                depth = (await store.stats()).queue_depth
                shown = await store.get(first.id)
                await store.ping()
                assert added == []  # the write is still held: the reads went past it
                lock.execute("ROLLBACK")  # now the held batch goes through
        assert (listed, depth, shown.id) == ([first.id], 1, first.id)
        assert added == [2]


async def test_the_reads_see_what_was_acknowledged(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "tasks.db") as store:
        for number in range(1, 21):
            added, _ = await store.add(task(number))
            assert (await store.get(added.id)).id == added.id  # read-your-writes
        assert (await store.stats()).queue_depth == 20


async def api_post(client: Any, number: int) -> Any:
    body = {"type": "issue_assigned", "payload": task(number).payload}
    return await client.post("/api/tasks", json=body, scope_base=LOOPBACK)


async def webhook_post(client: Any, number: int) -> Any:
    body = gh.encode(gh.assigned(number=number))
    headers = gh.github_headers(body, "issues", f"delivery-{number:04d}")
    return await client.post("/webhooks/github", data=body, headers=headers)


async def everyone(repository: str, login: str) -> bool:
    return True


@pytest.mark.parametrize("door", ["api", "webhook"])
async def test_a_full_write_queue_answers_503_and_stores_nothing_of_it(
    tmp_path: Path, door: str
) -> None:
    path = tmp_path / "tasks.db"
    send: Callable[[Any, int], Awaitable[Any]] = api_post if door == "api" else webhook_post
    store = SqliteStore(path, busy_timeout=BUSY_TIMEOUT, max_queued_writes=QUEUE)
    async with store:
        deps, _ = make_deps(store, config=ServiceConfig(bot_name=gh.BOT))
        hooks = WebhooksConfig(github=GithubWebhookConfig.model_validate({"secrets": [gh.SECRET]}))
        deps = dataclasses.replace(
            deps, webhooks=hooks, served=frozenset({gh.REPO}), may_command=everyone
        )
        client = create_app(deps).test_client()
        answers: dict[int, Any] = {}

        async def post(number: int) -> None:
            answers[number] = await send(client, number)

        with write_lock(path) as lock:
            async with trio.open_nursery() as nursery:
                refused = None
                for number in range(1, QUEUE + MAX_BATCH + 2):
                    nursery.start_soon(post, number)
                    await trio.testing.wait_all_tasks_blocked()
                    if number in answers:  # answered while the writer is held: refused
                        refused = number
                        break
                assert refused is not None, "the queue never filled"
                answer = answers[refused]
                assert answer.status_code == 503
                assert answer.headers["Retry-After"] == "1"
                error = await answer.get_json()
                assert error["error"] == "store_busy" and "nothing was stored" in error["detail"]
                lock.execute("ROLLBACK")  # the writer goes on; everything queued is stored
        accepted = sorted(n for n, a in answers.items() if a.status_code in (200, 201, 202))
        assert accepted == [n for n in range(1, refused)]
        stored = sorted(t.payload["issue"]["number"] for t in await store.list_tasks())
        assert stored == accepted  # the refused one is not there, not even half
        if door == "webhook":
            assert await store.get_delivery("github", f"delivery-{refused:04d}") is None
            again = await webhook_post(client, refused)  # GitHub's redelivery is taken
            assert again.status_code in (200, 201, 202)


async def test_the_refusal_is_a_store_busy_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    async with SqliteStore(path, busy_timeout=BUSY_TIMEOUT, max_queued_writes=1) as store:
        with write_lock(path) as lock:
            async with trio.open_nursery() as nursery:
                caught: list[StoreBusyError] = []

                async def add(number: int) -> None:
                    try:
                        await store.add(task(number))
                    except StoreBusyError as exc:
                        caught.append(exc)

                number = 0
                while not caught:
                    number += 1
                    nursery.start_soon(add, number)
                    await trio.testing.wait_all_tasks_blocked()
                lock.execute("ROLLBACK")
        assert str(path) in str(caught[0]) and "try again" in str(caught[0])
        assert (await store.stats()).queue_depth == number - 1
