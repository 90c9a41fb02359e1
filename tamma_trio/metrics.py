"""Prometheus instruments for the daemon.

Counters and the duration histogram are pushed by the worker as tasks start and end. Everything
that describes the queue is pulled at scrape time from the ServiceStatus snapshot instead, so a
scrape never touches the store and the numbers cannot drift from what /health reports.

Each Metrics owns its CollectorRegistry: tests build many services in one process, and the
global registry would refuse the second set of instruments.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from tamma_trio.models import TaskStatus, TaskType
from tamma_trio.process_metrics import register_process_metrics
from tamma_trio.status import ServiceState, ServiceStatus

SOURCES = ("api", "cli", "webhook", "forge")
OUTCOMES = (
    "completed",
    "retried",
    "deferred",
    "failed",
    "interrupted",
    "lease_lost",
    "cancelled",
)

# Tasks range from a no-op (milliseconds) to an agent implementing an issue (tens of minutes).
DURATION_BUCKETS = (0.01, 0.05, 0.25, 1, 5, 15, 60, 180, 600, 1800, 3600, float("inf"))


class SnapshotCollector(Collector):
    """Gauges read from the in-memory ServiceStatus when Prometheus scrapes."""

    def __init__(self, status: ServiceStatus, running_by_type: dict[str, int]) -> None:
        self._status = status
        self._running_by_type = running_by_type

    def collect(self) -> Iterator[Metric]:
        yield from self._queue_gauges()
        running = GaugeMetricFamily(
            "tamma_running_tasks", "Tasks running in this daemon, by type.", labels=["type"]
        )
        for task_type, count in sorted(self._running_by_type.items()):
            running.add_metric([task_type], count)
        yield running
        yield from self._service_gauges()
        yield from self._forge_series()

    def _forge_series(self) -> Iterator[Metric]:
        forge = self._status.forge
        requests = CounterMetricFamily(
            "tamma_forge_requests",
            "Requests to the forge's API, by forge and HTTP status ('error': no response).",
            labels=["forge", "status"],
        )
        for (name, status), count in sorted(forge.requests.items()):
            requests.add_metric([name, status], count)
        yield requests
        budget = GaugeMetricFamily(
            "tamma_forge_rate_limit_remaining",
            "Requests left in the forge's rate-limit window, by forge and resource.",
            labels=["forge", "resource"],
        )
        for (name, resource), remaining in sorted(forge.rate_remaining.items()):
            budget.add_metric([name, resource], remaining)
        yield budget

    def _queue_gauges(self) -> Iterator[Metric]:
        queue = self._status.queue
        tasks = GaugeMetricFamily(
            "tamma_tasks", "Tasks in the store, by status (last snapshot).", labels=["status"]
        )
        for status in TaskStatus:
            tasks.add_metric([status.value], queue.by_status.get(status, 0) if queue else 0)
        yield tasks
        yield GaugeMetricFamily(
            "tamma_queue_depth",
            "Queued tasks waiting to run, due or not (last snapshot).",
            value=queue.queue_depth if queue else 0,
        )
        oldest = queue.oldest_queued_age if queue else None
        yield GaugeMetricFamily(
            "tamma_oldest_queued_task_age_seconds",
            "Age of the oldest queued task, 0 when none is queued (last snapshot).",
            value=oldest or 0.0,
        )

    def _service_gauges(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "tamma_leases_reclaimed",
            "Tasks this daemon took back because their lease expired.",
            value=self._status.reclaimed,
        )
        yield GaugeMetricFamily(
            "tamma_ready",
            "1 when the daemon claims work and its store answers.",
            value=1 if self._status.ready else 0,
        )
        state = GaugeMetricFamily(
            "tamma_service_state", "1 for the current state.", labels=["state"]
        )
        for candidate in ServiceState:
            state.add_metric([candidate.value], 1 if self._status.state is candidate else 0)
        yield state


class Metrics:
    """The daemon's instruments; the worker calls the three recording methods."""

    def __init__(self, status: ServiceStatus) -> None:
        self.registry = CollectorRegistry()
        self._running_by_type: dict[str, int] = {t.value: 0 for t in TaskType}
        self._finished = 0
        self._seconds_total = 0.0
        self._attempts = Counter(
            "tamma_task_attempts", "Attempts started, by type.", ["type"], registry=self.registry
        )
        self._outcomes = Counter(
            "tamma_task_outcomes",
            "Attempts ended, by type and outcome.",
            ["type", "outcome"],
            registry=self.registry,
        )
        self._escalations = Counter(
            "tamma_task_escalations",
            "Tasks escalated to a human.",
            ["type"],
            registry=self.registry,
        )
        self._durations = Histogram(
            "tamma_task_duration_seconds",
            "Wall time of each attempt, by type.",
            ["type"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._intake = Counter(
            "tamma_intake_tasks",
            "New tasks by source: stored through this daemon's doors, or (cli) stored by "
            "the CLI and first claimed by this daemon.",
            ["source"],
            registry=self.registry,
        )
        register_process_metrics(self.registry)
        # labels() takes a lock and builds a key on every call; the worker calls these per task,
        # so each labelled child is looked up once and kept.
        self._children: dict[tuple[object, ...], Any] = {}
        self._create_series()
        self.registry.register(SnapshotCollector(status, self._running_by_type))

    def _create_series(self) -> None:
        """Expose every known series at 0, so rate() and alerts work before the first event."""
        for task_type in TaskType:
            self._child(self._attempts, task_type.value)
            self._child(self._escalations, task_type.value)
            self._child(self._durations, task_type.value)
            for outcome in OUTCOMES:
                self._child(self._outcomes, task_type.value, outcome)
        for source in SOURCES:
            self._child(self._intake, source)

    def _child(self, family: Counter | Histogram, *labels: str) -> Any:
        key = (family, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    def task_started(self, task_type: str) -> None:
        self._child(self._attempts, task_type).inc()
        self._running_by_type[task_type] = self._running_by_type.get(task_type, 0) + 1

    def task_finished(self, task_type: str, outcome: str, seconds: float) -> None:
        """Record an attempt's end; ``outcome`` is one of OUTCOMES."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r} (expected one of {OUTCOMES})")
        self._child(self._outcomes, task_type, outcome).inc()
        self._child(self._durations, task_type).observe(max(seconds, 0.0))
        running = self._running_by_type.get(task_type, 0)
        self._running_by_type[task_type] = max(running - 1, 0)
        self._finished += 1
        self._seconds_total += max(seconds, 0.0)

    def tasks_received(self, source: str, created: int) -> None:
        """Count ``created`` new tasks stored through the door ``source``."""
        self._child(self._intake, source).inc(created)

    def escalated(self, task_type: str) -> None:
        self._child(self._escalations, task_type).inc()

    @property
    def average_task_seconds(self) -> float | None:
        """Mean attempt duration since start, for /health; None before the first attempt ends."""
        return self._seconds_total / self._finished if self._finished else None

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
