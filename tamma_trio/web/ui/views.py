"""What each page shows, read from the store through the same calls the API makes.

Every read here is an indexed one (a page of a list, the trigger-kept counts, the finished-at
index, one task's events), so a page costs the same with a hundred tasks or a hundred thousand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import trio

from tamma_trio.models import QueueStats, Task, TaskEvent, TaskStatus
from tamma_trio.store.base import TaskStore
from tamma_trio.timeline import StepSpan, current_step, last_attempt, step_timeline
from tamma_trio.web.ui.charts import BarChart, throughput_chart

RUNNING_SHOWN = 20
RECENT_SHOWN = 8
ESCALATED_ACTION = "escalated_for_approval"
LOG_TAIL_BYTES = 4096


@dataclass(frozen=True)
class RunningTask:
    task: Task
    step: StepSpan | None
    elapsed: float  # seconds since the attempt started


@dataclass(frozen=True)
class Overview:
    stats: QueueStats
    by_priority: list[tuple[str, int]]  # highest priority first
    running: list[RunningTask]
    failures: list[Task]
    escalations: list[Task]
    charts: list[BarChart]
    now: dt.datetime


@dataclass(frozen=True)
class TaskPage:
    task: Task
    events: list[TaskEvent]
    spans: list[StepSpan]
    gantt: list[tuple[StepSpan, float, float]]  # span, left %, width %
    approvals: list[dict[str, Any]]
    links: dict[str, str]
    logs: dict[str, str] = field(default_factory=dict)


async def overview(store: TaskStore, now: float) -> Overview:
    stats = await store.stats()
    running = await store.list_tasks(status=TaskStatus.IN_PROGRESS, limit=RUNNING_SHOWN)
    failures = await store.list_tasks(status=TaskStatus.FAILED, limit=RECENT_SHOWN)
    escalations = await store.list_tasks(
        status=TaskStatus.COMPLETED, text=ESCALATED_ACTION, limit=RECENT_SHOWN
    )
    by_priority = await store.queued_by_priority()
    return Overview(
        stats=stats,
        by_priority=[(p.name.lower(), by_priority[p]) for p in sorted(by_priority, reverse=True)],
        running=[await _running(store, task, now) for task in running],
        failures=failures,
        escalations=[t for t in escalations if (t.result or {}).get("action") == ESCALATED_ACTION],
        charts=[
            await _chart(store, "Last hour", now, 300, 12),
            await _chart(store, "Last day", now, 3600, 24),
        ],
        now=dt.datetime.fromtimestamp(now, dt.UTC),
    )


async def _running(store: TaskStore, task: Task, now: float) -> RunningTask:
    started = task.started_at.timestamp() if task.started_at else now
    return RunningTask(task, current_step(await store.events(task.id)), max(0.0, now - started))


async def _chart(store: TaskStore, title: str, now: float, bucket: int, count: int) -> BarChart:
    """``count`` buckets ending with the one that holds ``now``, on round boundaries."""
    since = (int(now) // bucket - count + 1) * bucket
    buckets = await store.throughput(since, bucket)
    return throughput_chart(title, buckets, since, bucket, count)


async def task_page(store: TaskStore, task_id: int, now: float) -> TaskPage:
    task = await store.get(task_id)
    events = await store.events(task_id)
    spans = step_timeline(events)
    return TaskPage(
        task=task,
        events=events,
        spans=spans,
        gantt=gantt(last_attempt(spans), dt.datetime.fromtimestamp(now, dt.UTC)),
        approvals=[e.detail for e in events if e.kind == "approval"],
        links=forge_links(task),
        logs=await log_tails(task),
    )


def gantt(spans: list[StepSpan], now: dt.datetime) -> list[tuple[StepSpan, float, float]]:
    """Each span's left edge and width in percent of the attempt's length."""
    if not spans:
        return []
    start = spans[0].started
    total = max((span.finished or now) - start for span in spans).total_seconds() or 1.0
    return [
        (
            span,
            round(100 * (span.started - start).total_seconds() / total, 2),
            round(max(0.5, 100 * span.seconds(now) / total), 2),
        )
        for span in spans
    ]


def forge_links(task: Task) -> dict[str, str]:
    """The issue and pull request pages the engine reported, when they are web addresses."""
    progress, result = task.progress, task.result or {}
    candidates = {
        "issue": _dig(progress, "select_issue", "url"),
        "pull request": _dig(progress, "create_pull_request", "url")
        or _dig(result, "pull_request", "url"),
    }
    return {name: url for name, url in candidates.items() if is_web_url(url)}


def is_web_url(value: object) -> TypeGuard[str]:
    """Only http(s): a stored 'javascript:' address must never become a link."""
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def _dig(data: dict[str, Any], *keys: str) -> object:
    value: object = data
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


async def log_tails(task: Task) -> dict[str, str]:
    """The end of the agent's log and of the test output, as the engine recorded them."""
    tails: dict[str, str] = {}
    tests = _dig(task.progress, "run_tests", "output_tail")
    if isinstance(tests, str) and tests:
        tails["tests"] = tests
    agent_log = _dig(task.progress, "implement_code", "agent", "log_path")
    if isinstance(agent_log, str) and agent_log:
        text = await trio.to_thread.run_sync(_read_tail, agent_log)
        if text is not None:
            tails["agent"] = text
    return tails


def _read_tail(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
