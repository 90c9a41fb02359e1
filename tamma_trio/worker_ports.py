"""What the worker needs from its neighbours: the handlers, the metrics and an event sink.

Protocols, so the worker depends on no later module: the service injects handlers.Handlers,
metrics.Metrics and notify.publisher.Publisher, and tests inject their own.
"""

from __future__ import annotations

from typing import Any, Protocol

from tamma_trio.models import Outcome, Task
from tamma_trio.policy import Failure
from tamma_trio.service_events import EventKind


class TaskMetrics(Protocol):
    def task_started(self, task_type: str) -> None: ...

    def task_finished(self, task_type: str, outcome: str, seconds: float) -> None: ...

    def escalated(self, task_type: str) -> None: ...


class TaskEvents(Protocol):
    """Where the worker reports how tasks ended (notify.publisher.Publisher in the daemon)."""

    async def task_event(
        self, kind: EventKind, task: Task, reason: str | None, detail: dict[str, Any]
    ) -> None: ...


class NoEvents:
    async def task_event(
        self, kind: EventKind, task: Task, reason: str | None, detail: dict[str, Any]
    ) -> None:
        """Nobody listens (tests and embeddings that do not care)."""


class TaskHandlers(Protocol):
    """What the worker needs from handlers.Handlers (injected by the service)."""

    async def run(self, task: Task, token: str) -> Outcome: ...

    async def escalate(self, task: Task, failure: Failure) -> None: ...

    async def finish(self, task: Task, outcome: Outcome | None) -> None:
        """Free the task's engine resources; bounds its own engine call."""

    async def cancelled(self, task: Task) -> None:
        """Tell the forge an operator cancelled the running task."""
