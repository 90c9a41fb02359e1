"""systemd's notify protocol, spoken directly: READY, STOPPING, STATUS and watchdog pings.

Under a ``Type=notify`` unit systemd passes a datagram socket in ``$NOTIFY_SOCKET``; each
message is newline-separated ``KEY=VALUE`` lines (sd_notify(3)). That is a few lines over a
socket, so no library is needed. ``READY=1`` goes out once the servers are bound and claiming
started, so ``systemctl start`` returns when the daemon really serves; ``STOPPING=1`` when the
drain begins; ``STATUS=`` carries the queue depth and running tasks for ``systemctl status``; and
with ``WatchdogSec=`` set, ``WATCHDOG=1`` every half period proves the event loop still turns.
Outside systemd (no socket) every call does nothing.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping

import trio
from trio_util import AsyncValue

from tamma_trio.status import ServiceState, ServiceStatus

log = logging.getLogger(__name__)

STATUS_INTERVAL = 1.0
_STOPPING = (ServiceState.DRAINING, ServiceState.STOPPED)


class Notifier:
    """Sends sd_notify messages to one socket address (``@name`` is the abstract namespace)."""

    def __init__(self, address: str | None, watchdog_seconds: float | None = None) -> None:
        self.address = address
        self.watchdog_seconds = watchdog_seconds
        self._socket: socket.socket | None = None
        if address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str], pid: int) -> Notifier:
        """From NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (the watchdog only for ``pid``)."""
        watchdog = None
        usec = env.get("WATCHDOG_USEC", "")
        if usec.isdigit() and int(usec) > 0 and env.get("WATCHDOG_PID", str(pid)) == str(pid):
            watchdog = int(usec) / 1_000_000
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog)

    def send(self, **fields: str) -> None:
        """One message; a lost message is logged, never fatal (systemd may be restarting)."""
        if self._socket is None or self.address is None:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            self._socket.sendto(message, target)
        except OSError as exc:
            log.debug("systemd notify to %s failed: %s", self.address, exc)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def status_text(status: ServiceStatus) -> str:
    """``STATUS=`` for ``systemctl status``: what the daemon is doing, in one line."""
    queued = status.queue.queue_depth if status.queue else 0
    running = status.active_tasks
    state = status.state.value
    return f"{state}: {queued} queued, {running} running, {status.completed} completed"


async def report(notifier: Notifier, status: ServiceStatus, state: AsyncValue) -> None:
    """READY now (the caller calls this once serving), STATUS on change, STOPPING on drain,
    WATCHDOG every half period; runs until cancelled."""
    notifier.send(READY="1", STATUS=status_text(status))
    async with trio.open_nursery() as nursery:
        if notifier.watchdog_seconds:
            nursery.start_soon(_watchdog, notifier, notifier.watchdog_seconds / 2)
        nursery.start_soon(_statuses, notifier, status)
        await state.wait_value(lambda value: value in _STOPPING)
        notifier.send(STOPPING="1", STATUS=status_text(status))


async def _watchdog(notifier: Notifier, period: float) -> None:
    while True:
        notifier.send(WATCHDOG="1")
        await trio.sleep(period)


async def _statuses(notifier: Notifier, status: ServiceStatus) -> None:
    sent = status_text(status)
    while True:
        await trio.sleep(STATUS_INTERVAL)
        text = status_text(status)
        if text != sent:
            notifier.send(STATUS=text)
            sent = text
