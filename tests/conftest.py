"""Shared fixtures. Task stores: every backend, a hand-driven wall clock, a task builder.

Every test also runs hermetically: without the shell's TAMMA_* variables and in an empty
working directory, so an operator's quickstart (a ./tamma.toml, TAMMA_CONFIG) cannot change
what a test sees, in this process or in the daemons and CLIs it starts.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tamma_trio.models import NewTask
from tamma_trio.service import trio_wall_clock
from tamma_trio.store.base import TaskStore
from tests.aws_helpers import FAKE_AWS_ENV, MotoServer, create_resources, sqs_config
from tests.redis_server import RedisServer, RedisServerMissingError
from tests.service_helpers import STORE_KINDS, Stores
from tests.store_helpers import (
    CAPABILITY_DIFFERENCES,
    SHARED_BACKENDS,
    SINGLE_DAEMON_BACKENDS,
    STORE_BACKENDS,
    TOO_SLOW_ON_STAND_IN,
    FakeWall,
    StoreFactory,
    TaskBuilder,
)
from tests.web_fixtures import OpenMemoryStore, memory_stores


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark store_helpers' documented capability differences as strict xfails, and skip, with
    the reason shown in the summary, the tests too slow for a backend's local stand-in."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("store_factory") if callspec is not None else None
        name = getattr(item, "originalname", item.name)
        reason = CAPABILITY_DIFFERENCES.get((str(backend), name))
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
        slow = TOO_SLOW_ON_STAND_IN.get((str(backend), name))
        if slow is not None:
            item.add_marker(pytest.mark.skip(reason=slow))


@pytest.fixture(autouse=True)
def hermetic(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No TAMMA_* from the shell, and a fresh empty working directory for every test."""
    for name in [name for name in os.environ if name.startswith("TAMMA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """SQS and DynamoDB of moto's server mode on loopback, with fake credentials in the
    environment (daemon subprocesses inherit them); started once per session."""
    saved = {name: os.environ.get(name) for name in FAKE_AWS_ENV}
    os.environ.update(FAKE_AWS_ENV)
    server = MotoServer().start()
    try:
        yield server.endpoint
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def wall() -> FakeWall:
    return FakeWall()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; each test's stores use their own key prefix.

    Without redis-server the Redis tests skip on a developer machine, but fail under CI
    (CI=true), so a CI run can never pass with the Redis backend untested.
    """
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    except RedisServerMissingError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must test the Redis store: {exc}")
        pytest.skip(str(exc))
    yield server
    server.stop()


def _factory(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> StoreFactory:
    factory = StoreFactory(backend=backend, path=tmp_path / "tasks.db")
    if backend == "redis":
        factory.redis_url = request.getfixturevalue("redis_server").url
    if backend == "sqs":
        factory.aws = sqs_config(request.getfixturevalue("moto_endpoint"))
        create_resources(factory.aws)
    return factory


@pytest.fixture(params=STORE_BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return _factory(request, request.param, tmp_path)


@pytest.fixture(params=SHARED_BACKENDS)
def shared_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """The backends several daemons share."""
    return _factory(request, request.param, tmp_path)


@pytest.fixture(params=SINGLE_DAEMON_BACKENDS)
def single_daemon_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """The backends one daemon owns at a time, where a task of an older boot is an orphan."""
    return _factory(request, request.param, tmp_path)


@pytest.fixture
async def store(store_factory: StoreFactory, wall: FakeWall) -> AsyncIterator[TaskStore]:
    """An open store of each backend, on the hand-driven clock ``wall``."""
    async with store_factory(clock=wall, boot_id="boot-a") as opened:
        yield opened


@pytest.fixture
async def single_daemon_store(
    single_daemon_factory: StoreFactory, wall: FakeWall
) -> AsyncIterator[TaskStore]:
    """Like ``store``, over the single-daemon backends only."""
    async with single_daemon_factory(clock=wall, boot_id="boot-a") as opened:
        yield opened


@pytest.fixture
async def memory_store() -> AsyncIterator[OpenMemoryStore]:
    """``await memory_store()``: an open MemoryStore for the web tests, closed after the test."""
    async with memory_stores() as open_one:
        yield open_one


@pytest.fixture
def make_task() -> TaskBuilder:
    """``make_task(issue_number, **options)``: a valid issue_assigned NewTask on acme/widgets."""

    def build(number: int = 1, **options: Any) -> NewTask:
        payload = {"repository": "acme/widgets", "issue": {"number": number, "title": "t"}}
        return NewTask.build("issue_assigned", payload, **options)

    return build


@pytest.fixture(params=STORE_KINDS)
async def service_stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """Stores over one set of data on trio's clock (memory, inline SQLite), for service tests
    under MockClock; a second ``open`` is a restarted daemon."""
    stores = Stores(request.param, tmp_path / "tasks.db", trio_wall_clock())
    yield stores
    await stores.close()


@pytest.fixture
async def service_store(service_stores: Stores) -> TaskStore:
    return await service_stores.open()
