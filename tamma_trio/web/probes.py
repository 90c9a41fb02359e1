"""ProbeFastPath: GET /health and GET /ready answered before Quart sees the request.

Probes are the one kind of request whose latency matters while the daemon is busiest, and
their answers come from memory. Quart's request context, signals and response machinery cost
more CPU per request than the answer itself, and under load that work queues behind the
workers on the one trio thread (bench/throughput.py compares both paths). Everything else
(HEAD, other methods, every other path) goes on to Quart, whose routes for the same paths use
the same answer functions, so both paths say the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

Answer = Callable[[], tuple[dict[str, Any], int]]
AsgiApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]

_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


class ProbeFastPath:
    """ASGI middleware for Quart's ``app.asgi_app`` (see the module docstring)."""

    def __init__(self, inner: AsgiApp, answers: Mapping[str, Answer]) -> None:
        self._inner = inner
        self._answers = dict(answers)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        answer = None
        if scope["type"] == "http" and scope["method"] == "GET":
            answer = self._answers.get(scope["path"])
        if answer is None:
            await self._inner(scope, receive, send)
            return
        body, status = answer()
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = [*_HEADERS, (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data, "more_body": False})
