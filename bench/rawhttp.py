"""A minimal HTTP/1.1 keep-alive client for loopback benchmarks.

httpx spends about a millisecond of CPU per request, which on a 2-core machine caps what a
benchmark can push at any server. This client sends pre-encoded requests and parses only the
status line and Content-Length, so the figure it gives is the server's, not the client's.
Loopback only; no TLS, no chunked responses, no redirects.
"""

from __future__ import annotations

import json
from typing import Any

import trio

MAX_HEAD = 64 * 1024


class RawClient:
    """One keep-alive connection; ``request`` returns (status, body)."""

    def __init__(self, stream: trio.SocketStream, host: str) -> None:
        self._stream = stream
        self._host = host
        self._buffer = bytearray()

    @classmethod
    async def connect(cls, host: str, port: int) -> RawClient:
        return cls(await trio.open_tcp_stream(host, port), f"{host}:{port}")

    async def aclose(self) -> None:
        await self._stream.aclose()

    def encode(self, method: str, path: str, body: Any = None) -> bytes:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Length: {len(data)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        return head.encode() + b"\r\n" + data

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        await self._stream.send_all(raw)
        head = await self._read_head()
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self._read_exactly(length)

    async def _fill(self) -> None:
        chunk = await self._stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self._buffer += chunk

    async def _read_head(self) -> bytes:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise ConnectionError("response head too large")
            await self._fill()
        head = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        return head

    async def _read_exactly(self, length: int) -> bytes:
        while len(self._buffer) < length:
            await self._fill()
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return body
