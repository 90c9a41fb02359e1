"""What the HTTP side needs from the daemon, handed in by service.py.

The web layer sits at the intake end of the data flow, so it never imports the poller or the
worker: it gets the store to write to, the status to read, and a callable that wakes the poller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from tamma_trio.config import ServiceConfig, WebhooksConfig
from tamma_trio.event_feed import EventFeed
from tamma_trio.intake import Intake
from tamma_trio.intake.authorize import MayCommand
from tamma_trio.log import Redactor
from tamma_trio.metrics import Metrics
from tamma_trio.status import ServiceStatus
from tamma_trio.store.base import TaskStore


async def nobody_may_command(repository: str, login: str) -> bool:
    """Without an engine to ask, no comment commands the bot (fail closed)."""
    return False


@dataclass(frozen=True)
class WebDeps:
    store: TaskStore
    status: ServiceStatus
    metrics: Metrics
    wake: Callable[[], None]  # tells the poller a task was added in-process
    config: ServiceConfig
    now: Callable[[], float]  # trio-based monotonic seconds, the clock of status.started_at
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    served: frozenset[str] = frozenset()  # repositories whose deliveries are accepted
    may_command: MayCommand = nobody_may_command  # the engine's live permission check
    trigger_label: str = "tamma"  # the label that asks the bot to work on an issue
    forge_kind: str = "local"  # [engine.forge] kind: "gitlab" checks GitLab commanders live
    events: EventFeed | None = None  # wakes GET /api/events streams; None: they poll the store
    wall: Callable[[], float] = time.time  # the store's wall clock: ages and login sessions
    # Masks secrets in the errors /health and /ready quote; the service passes the one its log
    # setup filled with the configured secrets.
    redactor: Redactor = field(default_factory=Redactor)

    @cached_property
    def intake(self) -> Intake:
        """Where every task the HTTP side accepts goes: stored, then the poller is woken."""
        return Intake(self.store, self.wake, self.metrics.tasks_received)
