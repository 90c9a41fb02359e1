"""create_app(): the quart-trio application for health, metrics, the tasks API and the dashboard.

The service may build two apps (one per port) when the health and metrics ports differ, so each
group of routes can be switched off; the routes themselves live in health.py and api.py.
"""

from __future__ import annotations

from quart_trio import QuartTrio

from tamma_trio.web.api import register_api_routes
from tamma_trio.web.deps import WebDeps
from tamma_trio.web.errors import install_error_handlers
from tamma_trio.web.events import register_event_routes
from tamma_trio.web.health import READY_PATH, register_health_routes, register_metrics_route
from tamma_trio.web.ui import UI_PREFIX, register_ui
from tamma_trio.web.webhooks import register_webhook_routes

# A body that trickles in slower than this is dropped, so a slow client cannot hold a slot.
BODY_TIMEOUT_SECONDS = 10


def _check_paths(deps: WebDeps, *, health: bool, metrics: bool) -> None:
    paths = []
    if health:
        paths += [deps.config.health_check.path, READY_PATH]
    if metrics:
        paths.append(deps.config.metrics.path)
    if len(set(paths)) != len(paths):
        raise ValueError(f"health, ready and metrics paths must differ: {paths}")
    if any(path.startswith(("/api/", UI_PREFIX)) for path in paths):
        raise ValueError(f"health and metrics paths must not be under /api/ or {UI_PREFIX}")


def create_app(
    deps: WebDeps, *, health: bool = True, metrics: bool = True, api: bool = True
) -> QuartTrio:
    """The app with the chosen route groups; raises ValueError when configured paths collide."""
    _check_paths(deps, health=health, metrics=metrics)
    app = QuartTrio("tamma_trio.web", static_folder=None)
    # Each route enforces its own limit; this one only has to let the largest through.
    app.config["MAX_CONTENT_LENGTH"] = max(
        deps.config.api.max_body_bytes, deps.webhooks.max_body_bytes
    )
    app.config["BODY_TIMEOUT"] = BODY_TIMEOUT_SECONDS
    install_error_handlers(app)
    if health:
        register_health_routes(app, deps)
    if metrics:
        register_metrics_route(app, deps)
    if api:
        register_api_routes(app, deps)
        register_event_routes(app, deps)
        register_webhook_routes(app, deps)
        register_ui(app, deps)  # the dashboard lives beside the API, under the same token
    return app
