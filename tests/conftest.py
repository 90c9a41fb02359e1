"""Shared fixtures. Task stores: every backend, a hand-driven wall clock, a task builder."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tamma_trio.models import NewTask
from tamma_trio.store.base import TaskStore
from tests.aws_helpers import FAKE_AWS_ENV, MotoServer, create_resources, sqs_config
from tests.store_helpers import STORE_BACKENDS, FakeWall, StoreFactory, TaskBuilder


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


@pytest.fixture(params=STORE_BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    factory = StoreFactory(backend=request.param, path=tmp_path / "tasks.db")
    if request.param == "sqs":
        factory.aws = sqs_config(request.getfixturevalue("moto_endpoint"))
        create_resources(factory.aws)
    return factory


@pytest.fixture
async def store(store_factory: StoreFactory, wall: FakeWall) -> AsyncIterator[TaskStore]:
    """An open store of each backend, on the hand-driven clock ``wall``."""
    opened = store_factory(clock=wall, boot_id="boot-a")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
def make_task() -> TaskBuilder:
    """``make_task(issue_number, **options)``: a valid issue_assigned NewTask on acme/widgets."""

    def build(number: int = 1, **options: Any) -> NewTask:
        payload = {"repository": "acme/widgets", "issue": {"number": number, "title": "t"}}
        return NewTask.build("issue_assigned", payload, **options)

    return build
