"""/health, /ready and /metrics: answered from memory, never from the store.

A probe must keep answering while the store is slow or locked, or an orchestrator restarts a
daemon that is merely busy; so these routes only read ServiceStatus and Metrics, which the
worker and the snapshot task keep current.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from quart import Quart
from quart.typing import ResponseReturnValue

from tamma_trio.log import Redactor
from tamma_trio.models import TaskStatus
from tamma_trio.status import ServiceState, ServiceStatus
from tamma_trio.web.deps import WebDeps
from tamma_trio.web.errors import NO_STORE
from tamma_trio.web.probes import Answer, ProbeFastPath

READY_PATH = "/ready"


def health_state(status: ServiceStatus) -> str:
    """The health status word a monitor alerts on: healthy, degraded (store down), starting,
    draining..."""
    if status.state is ServiceState.RUNNING:
        return "healthy" if status.store_ok else "degraded"
    return status.state.value


def store_component(status: ServiceStatus, redactor: Redactor) -> str:
    if status.store_ok:
        return "up"
    if status.store_error:
        return f"down: {redactor.redact(status.store_error)}"
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
    """/health's body: status, uptime, metrics and components (the store and the engine)."""
    status = deps.status
    store = store_component(status, deps.redactor)
    components = {"store": store, "engine": status.engine or "unknown"}
    return {
        "status": health_state(status),
        "uptime": round(max(deps.now() - status.started_at, 0.0), 3),
        "metrics": health_metrics(deps),
        "components": components,
    }


def not_ready_reason(status: ServiceStatus, redactor: Redactor) -> str | None:
    if status.state is not ServiceState.RUNNING:
        return status.state.value
    if not status.store_ok:
        return store_component(status, redactor).replace("down", "store unavailable", 1)
    if status.claims_failing:
        error = redactor.redact(status.claim_error or "")
        return f"claiming tasks failed {status.claim_failures} times in a row: {error}"
    return None


def health_answer(deps: WebDeps) -> tuple[dict[str, Any], int]:
    """Liveness: 200 until the daemon has stopped, draining included."""
    code = 503 if deps.status.state is ServiceState.STOPPED else 200
    return health_body(deps), code


def ready_answer(deps: WebDeps) -> tuple[dict[str, Any], int]:
    """Readiness: 200 only while running with a store that answered its last ping."""
    reason = not_ready_reason(deps.status, deps.redactor)
    if reason is None:
        return {"ready": True}, 200
    return {"ready": False, "reason": reason}, 503


def probe_answers(deps: WebDeps) -> dict[str, Answer]:
    """Path -> answer for ProbeFastPath; the Quart routes call the same functions."""
    return {
        deps.config.health_check.path: partial(health_answer, deps),
        READY_PATH: partial(ready_answer, deps),
    }


def register_health_routes(app: Quart, deps: WebDeps) -> None:
    """/health and /ready as Quart routes (HEAD, 405...); ProbeFastPath answers their GETs."""

    async def health() -> ResponseReturnValue:
        body, code = health_answer(deps)
        return body, code, NO_STORE

    async def ready() -> ResponseReturnValue:
        body, code = ready_answer(deps)
        return body, code, NO_STORE

    app.add_url_rule(deps.config.health_check.path, "health", health, methods=["GET"])
    app.add_url_rule(READY_PATH, "ready", ready, methods=["GET"])
    app.asgi_app = ProbeFastPath(app.asgi_app, probe_answers(deps))  # type: ignore[method-assign]


def register_metrics_route(app: Quart, deps: WebDeps) -> None:
    async def metrics() -> ResponseReturnValue:
        body, content_type = deps.metrics.render()
        return body, 200, {"Content-Type": content_type, **NO_STORE}

    app.add_url_rule(deps.config.metrics.path, "metrics", metrics, methods=["GET"])
