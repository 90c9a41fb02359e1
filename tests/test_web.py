"""/health, /ready, /metrics, route groups and the real hypercorn server on loopback."""

from __future__ import annotations

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio.testing import MockClock

from tamma_trio.config import ApiConfig, HealthCheckConfig, MetricsConfig, ServiceConfig
from tamma_trio.models import QueueStats, TaskStatus
from tamma_trio.status import ServiceState
from tamma_trio.web import create_app, serve_app
from tamma_trio.web.health import health_answer
from tests.web_fixtures import LOOPBACK, HangingStore, OpenMemoryStore, make_deps

PR_REVIEW = {
    "type": "pr_review_requested",
    "payload": {"repository": "o/r", "pull_request": {"number": 3}},
}


async def test_health_reports_status_uptime_metrics_and_components(
    memory_store: OpenMemoryStore, autojump_clock: MockClock
) -> None:
    deps, _ = make_deps(await memory_store())
    deps.status.completed, deps.status.active_tasks = 4, 2
    deps.status.queue = QueueStats(
        by_status={TaskStatus.QUEUED: 3}, queue_depth=3, oldest_queued_age=7.5
    )
    await trio.sleep(12)
    response = await create_app(deps).test_client().get("/health")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "healthy"
    assert body["uptime"] == pytest.approx(12)
    assert body["metrics"]["tasks_completed"] == 4
    assert body["metrics"]["active_tasks"] == 2
    assert body["metrics"]["queue_depth"] == 3
    assert body["metrics"]["oldest_queued_age"] == 7.5
    assert body["metrics"]["by_status"]["queued"] == 3
    assert body["components"] == {"store": "up", "engine": "fake"}


async def test_health_stays_200_while_draining_and_ready_turns_503(
    memory_store: OpenMemoryStore, autojump_clock: MockClock
) -> None:
    deps, _ = make_deps(await memory_store())
    client = create_app(deps).test_client()
    assert (await client.get("/ready")).status_code == 200
    deps.status.state = ServiceState.DRAINING
    health = await client.get("/health")
    assert health.status_code == 200
    assert (await health.get_json())["status"] == "draining"
    ready = await client.get("/ready")
    assert ready.status_code == 503
    assert await ready.get_json() == {"ready": False, "reason": "draining"}


async def test_ready_is_503_while_starting_or_store_down(
    memory_store: OpenMemoryStore, autojump_clock: MockClock
) -> None:
    deps, _ = make_deps(await memory_store(), state=ServiceState.STARTING)
    client = create_app(deps).test_client()
    assert (await (await client.get("/ready")).get_json())["reason"] == "starting"
    deps.status.state = ServiceState.RUNNING
    deps.status.store_ok, deps.status.store_error = False, "disk I/O error token=abcdef123"
    ready = await client.get("/ready")
    assert ready.status_code == 503
    reason = (await ready.get_json())["reason"]
    assert reason.startswith("store unavailable: disk I/O error") and "abcdef123" not in reason
    health = await (await client.get("/health")).get_json()
    assert health["status"] == "degraded"
    assert health["components"]["store"].startswith("down")


async def test_ready_and_health_mask_the_secrets_of_the_redactor_passed_in(
    memory_store: OpenMemoryStore,
    autojump_clock: MockClock,
) -> None:
    deps, _ = make_deps(await memory_store())
    deps.redactor.register("plain-words-no-pattern-finds")
    deps.status.store_ok, deps.status.store_error = False, "open plain-words-no-pattern-finds"
    client = create_app(deps).test_client()
    reason = (await (await client.get("/ready")).get_json())["reason"]
    store = (await (await client.get("/health")).get_json())["components"]["store"]
    assert reason == "store unavailable: open ***"
    assert store == "down: open ***"


async def test_health_answers_while_the_store_hangs(autojump_clock: MockClock) -> None:
    store = HangingStore()
    deps, _ = make_deps(store)
    client = create_app(deps).test_client()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.get, "/api/tasks")
        await store.entered.wait()
        # Under autojump, a /health that awaited the store would sit until this deadline.
        with trio.fail_after(1):
            response = await client.get("/health")
            metrics = await client.get("/metrics")
        nursery.cancel_scope.cancel()
    assert response.status_code == 200 and metrics.status_code == 200


async def test_probe_fast_path_and_quart_routes_agree(
    memory_store: OpenMemoryStore, autojump_clock: MockClock
) -> None:
    deps, _ = make_deps(await memory_store())
    deps.status.state = ServiceState.DRAINING
    client = create_app(deps).test_client()
    fast = await client.get("/health")  # answered by ProbeFastPath
    assert fast.headers["Cache-Control"] == "no-store"
    assert await fast.get_json() == health_answer(deps)[0]
    head = await client.head("/ready")  # not a GET: Quart's route answers
    assert head.status_code == 503
    wrong = await client.post("/health", scope_base=LOOPBACK)
    assert wrong.status_code == 405
    assert (await wrong.get_json())["error"] == "method_not_allowed"


async def test_metrics_exposes_the_instruments(
    memory_store: OpenMemoryStore, autojump_clock: MockClock
) -> None:
    deps, _ = make_deps(await memory_store())
    deps.metrics.task_started("pr_comment")
    response = await create_app(deps).test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    families = {f.name for f in text_string_to_metric_families(await response.get_data(True))}
    expected = {
        "tamma_task_attempts",
        "tamma_task_outcomes",
        "tamma_task_escalations",
        "tamma_task_duration_seconds",
        "tamma_tasks",
        "tamma_queue_depth",
        "tamma_oldest_queued_task_age_seconds",
        "tamma_running_tasks",
        "tamma_intake_tasks",
        "tamma_build_info",
        "process_resident_memory_bytes",
    }
    assert expected <= families
    assert "tamma_active_tasks" not in families  # tamma_running_tasks says the same, by type


async def test_paths_come_from_config_and_groups_can_be_left_out(
    memory_store: OpenMemoryStore, autojump_clock: MockClock
) -> None:
    config = ServiceConfig(
        health_check=HealthCheckConfig(path="/healthz"), metrics=MetricsConfig(path="/prom")
    )
    deps, _ = make_deps(await memory_store(), config=config)
    full = create_app(deps).test_client()
    assert (await full.get("/healthz")).status_code == 200
    assert (await full.get("/prom")).status_code == 200
    assert (await full.get("/health")).status_code == 404
    metrics_only = create_app(deps, health=False, api=False).test_client()
    assert (await metrics_only.get("/prom")).status_code == 200
    for path in ("/healthz", "/ready", "/api/tasks"):
        missing = await metrics_only.get(path)
        assert missing.status_code == 404
        assert (await missing.get_json())["error"] == "not_found"
    health_only = create_app(deps, metrics=False).test_client()
    assert (await health_only.get("/prom")).status_code == 404


async def test_colliding_paths_are_refused(
    memory_store: OpenMemoryStore, autojump_clock: MockClock
) -> None:
    same = ServiceConfig(
        health_check=HealthCheckConfig(path="/x"), metrics=MetricsConfig(path="/x")
    )
    deps, _ = make_deps(await memory_store(), config=same)
    with pytest.raises(ValueError, match="must differ"):
        create_app(deps)
    create_app(deps, metrics=False)  # one of them alone is fine


async def test_unknown_routes_and_methods_answer_json(
    memory_store: OpenMemoryStore, autojump_clock: MockClock
) -> None:
    client = create_app(make_deps(await memory_store())[0]).test_client()
    missing = await client.get("/nope")
    assert missing.status_code == 404
    assert set(await missing.get_json()) == {"error", "detail"}
    wrong = await client.delete("/api/tasks", scope_base=LOOPBACK)
    assert wrong.status_code == 405
    assert (await wrong.get_json())["error"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


async def test_real_server_on_loopback_stops_through_the_trigger(
    memory_store: OpenMemoryStore,
) -> None:
    config = ServiceConfig(api=ApiConfig(token="t0ken-for-the-server-test"))
    deps, wakes = make_deps(await memory_store(), config=config)
    stop = trio.Event()
    app = create_app(deps)
    with trio.fail_after(10):  # a server that ignores the trigger fails here, not at 60 s
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                lambda task_status: serve_app(
                    app, "127.0.0.1", 0, shutdown_trigger=stop.wait, task_status=task_status
                )
            )
            base = urls[0]
            assert base.startswith("http://127.0.0.1:") and not base.endswith(":0")
            headers = {"Authorization": "Bearer t0ken-for-the-server-test"}
            async with httpx.AsyncClient(base_url=base, timeout=5) as http:
                health = await http.get("/health")
                added = await http.post("/api/tasks", json=PR_REVIEW, headers=headers)
                refused = await http.post("/api/tasks", json=PR_REVIEW)
                metrics = await http.get("/metrics")
            stop.set()
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    assert added.status_code == 201 and wakes.count == 1
    assert refused.status_code == 401
    assert "tamma_queue_depth" in metrics.text
    assert len(await deps.store.list_tasks()) == 1
