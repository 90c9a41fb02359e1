"""A small Chrome DevTools Protocol client for the browser test: headless Chromium, one page.

Debian's ``chromium`` is started with a throw-away profile and no network features of its own
(no QUIC, sync, component updates or background fetches); ``--remote-debugging-port=0`` makes it
pick a free port and write it to ``DevToolsActivePort`` in the profile. Commands and their answers
go over the page's WebSocket (websocket-client); events are kept until someone waits for them.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import websocket

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
START_TIMEOUT = 30.0


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One browser tab driven over its DevTools WebSocket."""

    def __init__(self, socket: websocket.WebSocket) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        call_id = next(self._ids)
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._events.append(message)

    def wait_event(self, method: str) -> dict[str, Any]:
        """The next event named ``method`` (the socket's timeout bounds the wait)."""
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method:
                    return self._events.pop(index)
            self._events.append(json.loads(self._socket.recv()))

    def set_viewport(self, width: int, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def navigate(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        answer = self.call(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=await_promise,
            returnByValue=True,
        )
        if "exceptionDetails" in answer:
            raise AssertionError(f"script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return data


@contextmanager
def headless_page(profile: Path, timeout: float = 30.0) -> Iterator[Page]:
    """A fresh headless Chromium with one blank page; killed on exit."""
    binary = chromium_path()
    assert binary is not None, "chromium is not installed (.ci/run installs it)"
    args = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = _devtools_port(profile / "DevToolsActivePort", process)
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=timeout).json()
        page = next(t for t in targets if t["type"] == "page")
        socket = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True
        )
        try:
            yield Page(socket)
        finally:
            socket.close()
    finally:
        process.kill()
        process.wait(timeout=timeout)


def _devtools_port(active_port: Path, process: subprocess.Popen[bytes]) -> int:
    """Chromium writes the port it chose once DevTools listens (polled, against a deadline)."""
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"chromium exited with {process.returncode} before listening")
        lines = active_port.read_text().splitlines() if active_port.exists() else []
        if lines and lines[0].isdigit():
            return int(lines[0])
        time.sleep(0.05)
    raise AssertionError("chromium did not open its DevTools port in time")
