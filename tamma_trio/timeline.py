"""A task's step timeline, read from its event trail: which step ran when, and how it ended.

The handlers append a ``step`` event as each engine step starts; everything else a span needs is
already in the trail (the approval decision after a plan or a diff, the status events of the
store), so a timeline costs one write per step and no second record that could disagree with
the trail. Pure functions over TaskEvents, so the CLI, the API and the dashboard share them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tamma_trio.models import TaskEvent

STEP_EVENT = "step"
APPROVAL_EVENT = "approval"

Outcome = Literal["done", "failed", "interrupted", "running"]

# How a status event ends the step that was running when it happened.
_ENDINGS: dict[str, Outcome] = {
    "completed": "done",
    "retry_scheduled": "failed",
    "deferred": "interrupted",  # a forge's rate limit: the step waits, it did not fail
    "failed": "failed",
    "released": "interrupted",
    "orphan_recovered": "interrupted",
    "quarantined": "interrupted",
    "cancelled": "interrupted",
    "lease_expired": "interrupted",
    "claimed": "interrupted",  # a new attempt while a step was open: the old one never ended
}


class StepSpan(BaseModel):
    """One run of one step; ``finished`` is None while it is still running."""

    model_config = ConfigDict(frozen=True)

    step: str
    attempt: int
    started: dt.datetime
    finished: dt.datetime | None
    outcome: Outcome

    def seconds(self, now: dt.datetime) -> float:
        """How long the step took, or has taken so far."""
        return max(0.0, ((self.finished or now) - self.started).total_seconds())


def step_detail(step: str, attempt: int) -> dict[str, object]:
    """The detail of the event the handlers record when ``step`` starts."""
    return {"step": step, "attempt": attempt}


def step_timeline(events: Sequence[TaskEvent]) -> list[StepSpan]:
    """Every step span of the trail ``events`` (oldest first), oldest first."""
    spans: list[StepSpan] = []
    running: StepSpan | None = None
    for event in events:
        ending = _ending_of(event)
        if running is not None and ending is not None:
            spans.append(running.model_copy(update={"finished": event.at, "outcome": ending}))
            running = None
        if event.kind == STEP_EVENT:
            running = _opened(event)
    if running is not None:
        spans.append(running)
    return spans


def current_step(events: Sequence[TaskEvent]) -> StepSpan | None:
    """The step running now, if the trail's last span is still open."""
    spans = step_timeline(events)
    return spans[-1] if spans and spans[-1].finished is None else None


def last_attempt(spans: Sequence[StepSpan]) -> list[StepSpan]:
    """The spans of the latest attempt that ran a step: the Gantt of that attempt."""
    if not spans:
        return []
    attempt = spans[-1].attempt
    return [span for span in spans if span.attempt == attempt]


def _ending_of(event: TaskEvent) -> Outcome | None:
    if event.kind in (STEP_EVENT, APPROVAL_EVENT):
        return "done"
    return _ENDINGS.get(event.kind)


def _opened(event: TaskEvent) -> StepSpan:
    detail = event.detail
    attempt = detail.get("attempt")
    return StepSpan(
        step=str(detail.get("step", "?")),
        attempt=attempt if isinstance(attempt, int) else 0,
        started=event.at,
        finished=None,
        outcome="running",
    )
