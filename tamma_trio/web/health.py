"""/health, /ready and /metrics: answered from memory, never from the store.

A probe must keep answering while the store is slow or locked, or an orchestrator restarts a
daemon that is merely busy; so these routes only read ServiceStatus and Metrics, which the
worker and the snapshot task keep current.
"""

from __future__ import annotations

from typing import Any

from quart import Quart
from quart.typing import ResponseReturnValue

from tamma_trio.log import REDACTOR
from tamma_trio.models import TaskStatus
from tamma_trio.status import ServiceState, ServiceStatus
from tamma_trio.web.deps import WebDeps
from tamma_trio.web.errors import NO_STORE

READY_PATH = "/ready"


def health_state(status: ServiceStatus) -> str:
    """The story's health status word: healthy, degraded (store down), starting, draining..."""
    if status.state is ServiceState.RUNNING:
        return "healthy" if status.store_ok else "degraded"
    return status.state.value


def store_component(status: ServiceStatus) -> str:
    if status.store_ok:
        return "up"
    if status.store_error:
        return f"down: {REDACTOR.redact(status.store_error)}"
    return "down"


def health_metrics(deps: WebDeps) -> dict[str, Any]:
    status, queue = deps.status, deps.status.queue
    by_status = {s.value: (queue.by_status.get(s, 0) if queue else 0) for s in TaskStatus}
    return {
        "tasks_completed": status.completed,
        "tasks_failed": status.failed,
        "tasks_retried": status.retried,
        "tasks_escalated": status.escalated,
        "tasks_interrupted": status.interrupted,
        "active_tasks": status.active_tasks,
        "queue_depth": queue.queue_depth if queue else 0,
        "oldest_queued_age": queue.oldest_queued_age if queue else None,
        "average_task_seconds": deps.metrics.average_task_seconds,
        "by_status": by_status,
    }


def health_body(deps: WebDeps) -> dict[str, Any]:
    """The story's HealthStatus: status, uptime, metrics, components."""
    status = deps.status
    components = {"store": store_component(status), "engine": status.engine or "unknown"}
    components.update(status.components)
    return {
        "status": health_state(status),
        "uptime": round(max(deps.now() - status.started_at, 0.0), 3),
        "metrics": health_metrics(deps),
        "components": components,
    }


def not_ready_reason(status: ServiceStatus) -> str | None:
    if status.state is not ServiceState.RUNNING:
        return status.state.value
    if not status.store_ok:
        return store_component(status).replace("down", "store unavailable", 1)
    return None


def register_health_routes(app: Quart, deps: WebDeps) -> None:
    """/health (liveness: 200 until stopped, draining included) and /ready (readiness)."""

    async def health() -> ResponseReturnValue:
        code = 503 if deps.status.state is ServiceState.STOPPED else 200
        return health_body(deps), code, NO_STORE

    async def ready() -> ResponseReturnValue:
        reason = not_ready_reason(deps.status)
        if reason is None:
            return {"ready": True}, 200, NO_STORE
        return {"ready": False, "reason": reason}, 503, NO_STORE

    app.add_url_rule(deps.config.health_check.path, "health", health, methods=["GET"])
    app.add_url_rule(READY_PATH, "ready", ready, methods=["GET"])


def register_metrics_route(app: Quart, deps: WebDeps) -> None:
    async def metrics() -> ResponseReturnValue:
        body, content_type = deps.metrics.render()
        return body, 200, {"Content-Type": content_type, **NO_STORE}

    app.add_url_rule(deps.config.metrics.path, "metrics", metrics, methods=["GET"])
