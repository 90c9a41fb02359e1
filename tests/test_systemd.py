"""systemd's notify protocol with a real `tamma-trio serve` and a real AF_UNIX datagram socket
standing in for systemd: READY once serving, STATUS, watchdog pings, STOPPING on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tamma_trio.config import ServiceConfig
from tamma_trio.status import ServiceState, ServiceStatus
from tamma_trio.systemd import STATUS_INTERVAL, Notifier, status_text
from tests.test_lifecycle import DEADLINE, Daemon, write_config
from tests.test_lifecycle import daemons as daemons  # the fixture: every daemon is stopped

Message = dict[str, str]


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket in the abstract namespace, as systemd hands out."""
    name = f"@tamma-test-{uuid.uuid4().hex}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("\0" + name[1:])
    try:
        yield name, listener
    finally:
        listener.close()


def receive_until(
    listener: socket.socket, done: Callable[[Message], bool], seen: list[Message]
) -> Message:
    """Read messages (appending to ``seen``) until one satisfies ``done``; fail at DEADLINE."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        listener.settimeout(max(end - time.monotonic(), 0.01))
        try:
            data = listener.recv(4096)
        except TimeoutError:
            break
        message = dict(line.split("=", 1) for line in data.decode().splitlines())
        seen.append(message)
        if done(message):
            return message
    raise AssertionError(f"no such message within {DEADLINE} s; got {seen}")


def test_serve_speaks_the_notify_protocol(
    tmp_path: Path,
    daemons: list[Daemon],
    notify_socket: tuple[str, socket.socket],
) -> None:
    name, listener = notify_socket
    env = {**os.environ, "NOTIFY_SOCKET": name, "WATCHDOG_USEC": "300000"}
    daemon = Daemon(write_config(tmp_path, {}), env=env).start()
    daemons.append(daemon)
    seen: list[Message] = []
    ready = receive_until(listener, lambda m: "READY" in m, seen)
    assert ready["READY"] == "1"
    assert ready["STATUS"] == "running: 0 queued, 0 running, 0 completed"
    assert "listening " in daemon.out.read_text()  # READY comes once it serves
    receive_until(listener, lambda m: m == {"WATCHDOG": "1"}, seen)
    receive_until(listener, lambda m: m == {"WATCHDOG": "1"}, seen)
    daemon.signal(signal.SIGTERM)
    stopping = receive_until(listener, lambda m: "STOPPING" in m, seen)
    assert stopping["STOPPING"] == "1" and stopping["STATUS"].startswith("draining: ")
    assert daemon.wait_exit() == 0
    assert [m for m in seen if "READY" in m] == [ready]


def test_without_a_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environment({}, pid=1)
    assert notifier.address is None and notifier.watchdog_seconds is None
    notifier.send(READY="1")  # a no-op, not an error
    notifier.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_the_watchdog_period_is_for_this_process_only(
    env: dict[str, str], expected: float | None
) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": "/run/x", **env}, pid=42)
    assert notifier.watchdog_seconds == expected
    notifier.close()


def test_a_vanished_socket_is_not_fatal(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "gone.sock"))
    notifier.send(READY="1")
    notifier.close()


def test_status_text_says_state_queue_and_work() -> None:
    status = ServiceStatus(started_at=0.0)
    status.state = ServiceState.DRAINING
    status.active_tasks = 2
    assert status_text(status) == "draining: 0 queued, 2 running, 0 completed"


def test_the_example_unit_fits_the_daemon() -> None:
    unit: dict[str, str] = {}
    text = (Path(__file__).parent.parent / "examples" / "tamma-trio.service").read_text()
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            unit.setdefault(key, value)
    assert unit["Type"] == "notify" and unit["NotifyAccess"] == "main"
    assert unit["ExecStart"].split()[1:3] == ["serve", "--log-format"]
    # the default paths are relative: they must land in the one writable directory
    assert unit["WorkingDirectory"] == f"/var/lib/{unit['StateDirectory']}"
    assert unit["ProtectSystem"] == "strict" and unit["NoNewPrivileges"] == "yes"
    # runs get child cgroups: delegated, and not read-only
    assert unit["Delegate"] == "yes" and "ProtectControlGroups" not in unit
    assert float(unit["TimeoutStopSec"]) > ServiceConfig().shutdown_timeout + 10
    assert int(unit["WatchdogSec"]) > 2 * STATUS_INTERVAL
