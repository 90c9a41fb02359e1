"""A real HTTP receiver on loopback for the outbound webhook tests.

It records every request (path, headers, raw body) and answers with the next status of its
script (then 200 forever). It runs stdlib's threading HTTP server, so the daemon under test
talks to it over a real socket; tests wait on its condition variable, never on a sleep.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[Received] = []
        self.changed = threading.Condition()

    def answer(self, received: Received) -> int:
        with self.changed:
            self.requests.append(received)
            status = self.statuses.pop(0) if self.statuses else 200
            self.changed.notify_all()
        return status

    def wait_for(self, check: Callable[[list[Received]], bool], timeout: float = 20) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: check(self.requests), timeout=timeout):
                raise AssertionError(f"the receiver got only {len(self.requests)} request(s)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def receiving(receiver: Receiver, port: int = 0) -> Iterator[str]:
    """Serve ``receiver`` on 127.0.0.1:``port``; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            status = receiver.answer(received)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads the recorded requests instead."""

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
