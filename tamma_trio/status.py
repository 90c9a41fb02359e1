"""The daemon's in-memory status: what /health, /ready and /metrics read without touching the store.

The worker and the poller write it, a snapshot task refreshes the queue statistics, and the HTTP
side only reads it, so a busy or slow store never delays a health probe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tamma_trio.models import QueueStats

# Claims that failed in a row before /ready says so: one failure is a blip (a busy database),
# several mean no task is being handed out at all.
CLAIM_FAILURES_NOT_READY = 3


class ServiceState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPED = "stopped"


@dataclass
class ForgeStats:
    """What the forge client saw: requests by (forge, status code) and the rate-limit budget
    left by (forge, resource). The client writes it, /metrics reads it at scrape time."""

    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    rate_remaining: dict[tuple[str, str], int] = field(default_factory=dict)

    def request(self, forge: str, status: int | str) -> None:
        key = (forge, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1

    def budget(self, forge: str, resource: str, remaining: int) -> None:
        self.rate_remaining[(forge, resource)] = remaining


@dataclass
class ServiceStatus:
    """Mutable, owned by the trio thread; every field is cheap to read."""

    started_at: float  # trio.current_time() at start, for uptime
    state: ServiceState = ServiceState.STARTING
    store_ok: bool = False
    store_error: str | None = None
    active_tasks: int = 0
    queue: QueueStats | None = None
    completed: int = 0
    failed: int = 0
    retried: int = 0
    escalated: int = 0
    interrupted: int = 0
    reclaimed: int = 0  # tasks whose lease expired while this daemon ran
    claim_failures: int = 0  # in a row; reset by a claim that worked
    claim_error: str | None = None
    engine: str = ""
    forge: ForgeStats = field(default_factory=ForgeStats)

    @property
    def claims_failing(self) -> bool:
        return self.claim_failures >= CLAIM_FAILURES_NOT_READY

    @property
    def ready(self) -> bool:
        return self.state is ServiceState.RUNNING and self.store_ok and not self.claims_failing

    def record_claim(self, error: str | None) -> None:
        """The poller's report after each claim."""
        if error is None:
            self.claim_failures, self.claim_error = 0, None
        else:
            self.claim_failures += 1
            self.claim_error = error
