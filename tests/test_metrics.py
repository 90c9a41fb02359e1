"""Prometheus instruments: pushed counters, snapshot gauges read at scrape time, own registry."""

from __future__ import annotations

import platform
from functools import partial

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio.testing import MockClock

from tamma_trio.intake import Intake
from tamma_trio.metrics import Metrics
from tamma_trio.models import NewTask, QueueStats, TaskStatus
from tamma_trio.service import Service, trio_wall_clock
from tamma_trio.status import ServiceState, ServiceStatus
from tamma_trio.store.memory import MemoryStore
from tamma_trio.version import tamma_version
from tests.service_helpers import fake, make_config, pr_task, status_is, wait_for, zero


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counters_and_histogram_follow_the_worker_calls() -> None:
    metrics = Metrics(ServiceStatus(started_at=0.0))
    metrics.task_started("issue_assigned")
    metrics.task_started("issue_assigned")
    metrics.task_finished("issue_assigned", "completed", 0.2)
    metrics.task_finished("issue_assigned", "retried", 3.0)
    metrics.escalated("issue_assigned")
    got = samples(metrics)
    typed = (("type", "issue_assigned"),)
    assert got[("tamma_task_attempts_total", typed)] == 2
    assert got[("tamma_task_outcomes_total", (("outcome", "completed"), *typed))] == 1
    assert got[("tamma_task_outcomes_total", (("outcome", "retried"), *typed))] == 1
    assert got[("tamma_task_escalations_total", typed)] == 1
    assert got[("tamma_task_duration_seconds_count", typed)] == 2
    assert got[("tamma_task_duration_seconds_sum", typed)] == pytest.approx(3.2)
    assert got[("tamma_task_duration_seconds_bucket", (("le", "0.25"), *typed))] == 1
    assert got[("tamma_running_tasks", typed)] == 0
    assert metrics.average_task_seconds == pytest.approx(1.6)


def test_every_series_exists_before_the_first_task() -> None:
    got = samples(Metrics(ServiceStatus(started_at=0.0)))
    key = ("tamma_task_outcomes_total", (("outcome", "lease_lost"), ("type", "pr_comment")))
    assert got[key] == 0
    assert got[("tamma_queue_depth", ())] == 0


def test_snapshot_gauges_are_read_at_scrape_time() -> None:
    status = ServiceStatus(started_at=0.0)
    metrics = Metrics(status)
    metrics.task_started("pr_comment")
    status.active_tasks = 1
    status.state, status.store_ok = ServiceState.RUNNING, True
    status.queue = QueueStats(
        by_status={TaskStatus.QUEUED: 5, TaskStatus.COMPLETED: 9},
        queue_depth=5,
        oldest_queued_age=12.5,
    )
    got = samples(metrics)
    assert got[("tamma_tasks", (("status", "queued"),))] == 5
    assert got[("tamma_tasks", (("status", "completed"),))] == 9
    assert got[("tamma_tasks", (("status", "failed"),))] == 0
    assert got[("tamma_queue_depth", ())] == 5
    assert got[("tamma_oldest_queued_task_age_seconds", ())] == 12.5
    assert got[("tamma_running_tasks", (("type", "pr_comment"),))] == 1
    assert got[("tamma_ready", ())] == 1
    assert got[("tamma_service_state", (("state", "running"),))] == 1
    status.state = ServiceState.DRAINING
    assert samples(metrics)[("tamma_ready", ())] == 0


def test_each_instance_has_its_own_registry() -> None:
    first, second = Metrics(ServiceStatus(started_at=0.0)), Metrics(ServiceStatus(started_at=0.0))
    first.task_started("pr_comment")
    key = ("tamma_task_attempts_total", (("type", "pr_comment"),))
    assert samples(first)[key] == 1 and samples(second)[key] == 0
    assert first.registry is not second.registry


def test_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        Metrics(ServiceStatus(started_at=0.0)).task_finished("pr_comment", "exploded", 1.0)


def test_process_metrics_and_build_info() -> None:
    got = samples(Metrics(ServiceStatus(started_at=0.0)))
    assert got[("process_resident_memory_bytes", ())] > 1_000_000
    assert got[("process_open_fds", ())] >= 3
    assert got[("process_cpu_seconds_total", ())] > 0
    [(labels, value)] = [(k[1], v) for k, v in got.items() if k[0] == "tamma_build_info"]
    assert dict(labels) == {"version": tamma_version(), "python": platform.python_version()}
    assert value == 1


async def test_intake_counts_new_tasks_by_source_and_not_duplicates() -> None:
    metrics = Metrics(ServiceStatus(started_at=0.0))
    async with MemoryStore() as store:
        intake = Intake(store, counted=metrics.tasks_received)
        payload = {"repository": "acme/widgets", "pull_request": {"number": 1}}
        news = [NewTask.build("pr_review_requested", payload, key=key) for key in ("a", "b")]
        await intake.submit(news, source="api")
        await intake.submit(news[:1], source="api")  # known key: nothing new
        await intake.submit_one(NewTask.build("pr_review_requested", payload), source="forge")
        got = samples(metrics)
        assert got[("tamma_intake_tasks_total", (("source", "api"),))] == 2
        assert got[("tamma_intake_tasks_total", (("source", "forge"),))] == 1
        assert got[("tamma_intake_tasks_total", (("source", "webhook"),))] == 0


async def test_tasks_the_cli_stored_are_counted_once_at_their_first_claim(
    autojump_clock: MockClock,
) -> None:
    """The CLI writes the store and exits; the daemon counts its task when it first claims it,
    not again when the task is retried, and never counts a task another door stored."""
    wall = trio_wall_clock()
    config = make_config(metrics={"enabled": True, "port": 0})
    engine = fake(failures={"merge_pr": {"times": 1, "retryable": False}})
    async with MemoryStore(clock=wall) as store, trio.open_nursery() as nursery:
        daemon = Service(config, store, lambda _: engine, wall=wall, rng=zero)
        await nursery.start(daemon.run)
        by_cli, _ = await Intake(store).submit_one(pr_task(1, actor="cli"), source="cli")
        daemon.poller.wake()
        await status_is(store, by_cli.id, TaskStatus.FAILED)  # the merge failed once
        await store.retry(by_cli.id, actor="cli")
        daemon.poller.wake()
        await status_is(store, by_cli.id, TaskStatus.COMPLETED)
        by_api = await daemon.enqueue(pr_task(2))
        await status_is(store, by_api.id, TaskStatus.COMPLETED)
        await wait_for(partial(intake_count, daemon.metrics, "cli", 1))
        daemon.request_shutdown()
        await daemon.state.wait_value(ServiceState.STOPPED)
    got = samples(daemon.metrics)
    assert got[("tamma_intake_tasks_total", (("source", "cli"),))] == 1
    assert got[("tamma_intake_tasks_total", (("source", "forge"),))] == 1
    assert got[("tamma_intake_tasks_total", (("source", "api"),))] == 0


async def intake_count(metrics: Metrics, source: str, expected: float) -> bool:
    return samples(metrics)[("tamma_intake_tasks_total", (("source", source),))] == expected
