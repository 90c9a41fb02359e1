"""A real redis-server for tests and benchmarks: its own port, directory, log and AOF file.

Started with ``appendonly yes`` and ``appendfsync everysec`` by default (the settings the README
recommends), no RDB snapshots, and stopped with SIGTERM (which rewrites nothing and fsyncs the
AOF) or SIGKILL. ``restart`` keeps the port and the directory, so the data comes back from the
AOF and clients reconnect to the same URL.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

START_TIMEOUT = 10.0


class RedisServerMissingError(RuntimeError):
    """redis-server is not on PATH (CI installs it with apt-get, see .ci/run)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RedisServerMissingError(
            "redis-server is not installed (apt-get install redis-server)"
        )
    return found


class RedisServer:
    """One redis-server process on 127.0.0.1; ``url`` is its database 0."""

    def __init__(self, workdir: Path, *, appendonly: bool = True, port: int | None = None) -> None:
        self.workdir = workdir
        self.appendonly = appendonly
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis.log"

    def argv(self) -> list[str]:
        return [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--logfile",
            str(self.log_path),
        ]

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Poll PING until the server answers (it loads the AOF before it does)."""
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self.log_tail()}")
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if time.monotonic() > deadline:
                        tail = self.log_tail()
                        raise RuntimeError(f"redis-server did not start: {tail}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(timeout=START_TIMEOUT)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
