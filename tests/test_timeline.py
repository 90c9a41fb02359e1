"""Step timelines from the event trail: the handlers' step events and the spans read from them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import trio

from tamma_trio.config import ServiceConfig
from tamma_trio.errors import EngineError
from tamma_trio.handlers import Handlers
from tamma_trio.models import NewTask, TaskEvent
from tamma_trio.store.memory import MemoryStore
from tamma_trio.timeline import current_step, last_attempt, step_timeline
from tests.fake_engine import FakeEngine, FakeOptions

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ISSUE = {"repository": "acme/widgets", "issue": {"number": 7, "title": "Fix the widget"}}


def event(second: int, kind: str, **detail: Any) -> TaskEvent:
    at = T0 + dt.timedelta(seconds=second)
    return TaskEvent(id=second, task_id=1, at=at, kind=kind, actor="worker", detail=detail)


def step(second: int, name: str, attempt: int = 1) -> TaskEvent:
    return event(second, "step", step=name, attempt=attempt)


def table(events: list[TaskEvent]) -> list[tuple[str, int, int, int | None, str]]:
    return [
        (
            span.step,
            span.attempt,
            int((span.started - T0).total_seconds()),
            None if span.finished is None else int((span.finished - T0).total_seconds()),
            span.outcome,
        )
        for span in step_timeline(events)
    ]


def test_a_step_ends_where_the_next_step_or_the_approval_begins() -> None:
    trail = [
        event(0, "enqueued"),
        event(1, "claimed", attempt=1),
        step(2, "select_issue"),
        step(3, "generate_plan"),
        event(7, "approval", approved=True),
        step(8, "create_branch"),
        event(9, "completed", attempt=1),
    ]
    assert table(trail) == [
        ("select_issue", 1, 2, 3, "done"),
        ("generate_plan", 1, 3, 7, "done"),
        ("create_branch", 1, 8, 9, "done"),
    ]
    assert current_step(trail) is None


def test_a_failed_attempt_then_a_retry_that_is_still_running() -> None:
    trail = [
        event(1, "claimed", attempt=1),
        step(2, "implement_code"),
        event(5, "retry_scheduled", attempt=1, error="boom"),
        event(9, "claimed", attempt=2),
        step(10, "implement_code", attempt=2),
    ]
    assert table(trail) == [
        ("implement_code", 1, 2, 5, "failed"),
        ("implement_code", 2, 10, None, "running"),
    ]
    running = current_step(trail)
    assert running is not None and running.step == "implement_code"
    assert running.seconds(T0 + dt.timedelta(seconds=13)) == 3
    assert [span.attempt for span in last_attempt(step_timeline(trail))] == [2]


def test_interruptions_close_the_open_step() -> None:
    for kind in ("released", "cancelled", "orphan_recovered", "claimed", "deferred"):
        trail = [step(2, "run_tests"), event(4, kind)]
        assert table(trail) == [("run_tests", 1, 2, 4, "interrupted")]


def test_an_odd_step_event_still_reads() -> None:
    trail = [event(2, "step", step=None, attempt="x"), event(3, "failed")]
    assert table(trail) == [("None", 0, 2, 3, "failed")]


async def test_the_handlers_record_each_step_they_run_and_not_the_resumed_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with MemoryStore(clock=lambda: T0.timestamp() + trio.current_time()) as store:
        await store.add(NewTask.build("issue_assigned", ISSUE))
        engine = FakeEngine(
            FakeOptions.model_validate(
                {"delay": 1.0, "failures": {"run_tests": {"times": 1, "retryable": True}}}
            )
        )
        handlers = Handlers(engine, store, ServiceConfig())
        [task] = await store.claim(1)
        try:
            await handlers.run(task, task.lease_token or "")
        except EngineError as exc:
            await store.retry_later(task.id, task.lease_token or "", str(exc), 0.0)
        [again] = await store.claim(1)
        await handlers.run(again, again.lease_token or "")

        spans = step_timeline(await store.events(task.id))
        assert [(s.step, s.attempt, s.outcome) for s in spans] == [
            ("select_issue", 1, "done"),
            ("analyze_issue", 1, "done"),
            ("generate_plan", 1, "done"),
            ("create_branch", 1, "done"),
            ("implement_code", 1, "done"),
            ("run_tests", 1, "failed"),
            ("run_tests", 2, "done"),
            ("create_pull_request", 2, "running"),  # the worker, not the handlers, completes it
        ]
        assert [s.seconds(s.finished or s.started) for s in spans[:2]] == [1.0, 1.0]
