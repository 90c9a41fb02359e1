"""GET /api/events: the service event stream as Server-Sent Events.

Every event is sent with its store id as the SSE ``id``, so a client that reconnects (browsers'
EventSource does it on its own) sends ``Last-Event-ID`` and gets exactly what it missed, read
from the store; ``?after=N`` does the same for a first connection. A comment line every
KEEPALIVE seconds keeps proxies from closing a quiet stream and lets the server notice a client
that went away.
"""

from __future__ import annotations

import json
import operator
from collections.abc import AsyncIterator
from functools import partial

import trio
from pydantic import SecretStr
from quart import Quart, Response, request
from quart.typing import ResponseReturnValue

from tamma_trio.event_feed import EventFeed
from tamma_trio.service_events import ServiceEvent
from tamma_trio.store.base import TaskStore
from tamma_trio.web.auth import bearer_credential, token_matches
from tamma_trio.web.body import ascii_int
from tamma_trio.web.deps import WebDeps
from tamma_trio.web.errors import ApiError

EVENTS_PATH = "/api/events"
KEEPALIVE = 15.0
POLL_WITHOUT_FEED = 1.0  # an app without the daemon's feed (embedding) looks at the store
PAGE = 100
MAX_ID = 2**63 - 1


def sse_frame(event: ServiceEvent) -> bytes:
    data = json.dumps(event.public(), separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.kind.value}\ndata: {data}\n\n".encode()


def resume_point() -> int:
    """The id after which to start: Last-Event-ID, else ?after=, else 0 (everything)."""
    for source, raw in (
        ("Last-Event-ID", request.headers.get("Last-Event-ID")),
        ("after", request.args.get("after")),
    ):
        if raw is not None:
            value = ascii_int(raw, 0, MAX_ID)
            if value is None:
                detail = f"{source} must be an event id (a whole number), got {raw[:40]!r}"
                raise ApiError(400, "invalid_field", detail, field=source)
            return value
    return 0


def require_reader(token: SecretStr | None) -> None:
    """With a token configured, the stream (which names tasks and reasons) needs it too."""
    if token is None:
        return
    credential = bearer_credential(request.headers.get("Authorization"))
    if credential is None or not token_matches(credential, token.get_secret_value()):
        challenge = {"WWW-Authenticate": 'Bearer realm="tamma"'}
        raise ApiError(401, "unauthorized", "a valid bearer token is required", headers=challenge)


async def stream(store: TaskStore, feed: EventFeed | None, after: int) -> AsyncIterator[bytes]:
    last = after
    while True:
        seen = feed.generation.value if feed else 0
        batch = await store.service_events(after=last, limit=PAGE)
        for event in batch:
            yield sse_frame(event)
            last = event.id
        if len(batch) == PAGE:
            continue
        with trio.move_on_after(KEEPALIVE if feed else POLL_WITHOUT_FEED) as quiet:
            if feed is None:
                await trio.sleep_forever()
            await feed.generation.wait_value(partial(operator.ne, seen))
        if quiet.cancelled_caught and feed is not None:
            yield b": keepalive\n\n"


def register_event_routes(app: Quart, deps: WebDeps) -> None:
    @app.get(EVENTS_PATH)
    async def events() -> ResponseReturnValue:
        require_reader(deps.config.api.token)
        after = resume_point()
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        body = stream(deps.store, deps.events, after)
        response = Response(body, mimetype="text/event-stream", headers=headers)
        response.timeout = None  # a stream lasts as long as its client
        return response
