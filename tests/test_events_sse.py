"""GET /api/events over a real socket, read by httpx as a stream: frames carry the store's ids,
events published while a client listens reach it at once, and a reconnect with Last-Event-ID
(or ?after=) resumes from the store without a repeat or a gap. Bad ids and missing tokens are
4xx with a reason."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any, cast

import httpx
import pytest
import trio
from pydantic import SecretStr

from tamma_trio.config import ApiConfig, ServiceConfig
from tamma_trio.event_feed import EventFeed
from tamma_trio.service_events import EventKind, NewServiceEvent
from tamma_trio.store.memory import MemoryStore
from tamma_trio.web import create_app, serve_app
from tests.web_fixtures import OpenMemoryStore, make_deps

TOKEN = "sse-test-token"

# httpx reads a stream through nested async generators and closes only the outermost when a
# reader stops early, which an endless SSE stream always does; trio then warns about the inner
# ones. Only those client-side generators are excused: ours (the server's) still fail a test.
pytestmark = pytest.mark.filterwarnings(r"ignore:Async generator 'http(x|core)\.:ResourceWarning")


def failed(number: int) -> NewServiceEvent:
    return NewServiceEvent(
        kind=EventKind.TASK_FAILED,
        task_id=number,
        task_type="issue_assigned",
        repository="acme/widgets",
        subject=f"acme/widgets#{number}",
        reason=f"reason {number}",
    )


@asynccontextmanager
async def serving(
    store: MemoryStore, feed: EventFeed | None, config: ServiceConfig | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    deps, _ = make_deps(store, config=config)
    deps = dataclasses.replace(deps, events=feed)
    app = create_app(deps, metrics=False)
    stop = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                lambda task_status: serve_app(
                    app, "127.0.0.1", 0, shutdown_trigger=stop.wait, task_status=task_status
                )
            )
            async with httpx.AsyncClient(base_url=urls[0], timeout=5) as http:
                yield http
            stop.set()


async def read_frames(lines: AsyncIterator[str], count: int) -> list[dict[str, Any]]:
    """The next ``count`` SSE frames as {"id", "event", "data"} (comments skipped)."""
    frames: list[dict[str, Any]] = []
    frame: dict[str, Any] = {}
    async for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if frame:
                frames.append(frame)
                frame = {}
            if len(frames) == count:
                return frames
            continue
        name, _, value = line.partition(": ")
        frame[name] = json.loads(value) if name == "data" else value
    raise AssertionError(f"the stream ended after {len(frames)} frames")


def lines_of(response: httpx.Response) -> AsyncGenerator[str, None]:
    return cast("AsyncGenerator[str, None]", response.aiter_lines())


async def first_frame(response: httpx.Response) -> dict[str, Any]:
    async with aclosing(lines_of(response)) as lines:
        (frame,) = await read_frames(lines, 1)
    return frame


async def test_stream_sends_stored_and_live_events_then_resumes(
    memory_store: OpenMemoryStore,
) -> None:
    store = await memory_store()
    feed = EventFeed()
    first = await store.publish(failed(1))
    second = await store.publish(failed(2))
    async with serving(store, feed) as http:
        async with http.stream("GET", "/api/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async with aclosing(lines_of(response)) as lines:
                stored = await read_frames(lines, 2)
                live = await store.publish(failed(3))
                feed.published()
                (pushed,) = await read_frames(lines, 1)
        missed = await store.publish(failed(4))  # while no client listens
        headers = {"Last-Event-ID": str(live.id)}
        async with http.stream("GET", "/api/events", headers=headers) as response:
            resumed = await first_frame(response)
        async with http.stream("GET", f"/api/events?after={first.id}") as response:
            after_first = await first_frame(response)

    assert [f["id"] for f in stored] == [str(first.id), str(second.id)]
    assert stored[0]["event"] == "task.failed"
    assert stored[0]["data"] == first.public()
    assert stored[1]["data"]["reason"] == "reason 2" and stored[1]["data"]["type"] == "task.failed"
    assert pushed["id"] == str(live.id) and pushed["data"]["subject"] == "acme/widgets#3"
    assert resumed["id"] == str(missed.id)
    assert after_first["id"] == str(second.id)


async def test_without_the_daemons_feed_the_stream_still_sees_new_events(
    memory_store: OpenMemoryStore,
) -> None:
    store = await memory_store()
    async with serving(store, None) as http, http.stream("GET", "/api/events") as response:
        lines = response.aiter_lines()
        event = await store.publish(failed(1))
        (frame,) = await read_frames(lines, 1)
    assert frame["id"] == str(event.id)


async def test_bad_resume_ids_are_400_with_the_field(memory_store: OpenMemoryStore) -> None:
    store = await memory_store()
    async with serving(store, EventFeed()) as http:
        header = await http.get("/api/events", headers={"Last-Event-ID": "abc"})
        query = await http.get("/api/events?after=-1")
    assert header.status_code == 400
    assert header.json() == {
        "error": "invalid_field",
        "field": "Last-Event-ID",
        "detail": "Last-Event-ID must be an event id (a whole number), got 'abc'",
    }
    assert query.status_code == 400 and query.json()["field"] == "after"


async def test_with_a_token_the_stream_needs_it(memory_store: OpenMemoryStore) -> None:
    store = await memory_store()
    await store.publish(failed(1))
    config = ServiceConfig(api=ApiConfig(token=SecretStr(TOKEN)))
    async with serving(store, EventFeed(), config) as http:
        missing = await http.get("/api/events")
        wrong = await http.get("/api/events", headers={"Authorization": "Bearer nope"})
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with http.stream("GET", "/api/events", headers=auth) as response:
            frame = await first_frame(response)
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert TOKEN not in missing.text
    assert frame["id"] == "1"
