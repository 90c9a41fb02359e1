"""The web dashboard under /ui: server-rendered pages over the same store calls as the API.

Pages are Jinja templates (templates/ui/), charts are inline SVG drawn on the server, and one
small script (static/ui.js) refreshes the overview's live part; the pages work without it.
Nothing is loaded from another site, so the dashboard works offline behind a strict
Content-Security-Policy.
"""

from __future__ import annotations

import logging
from importlib import resources

from quart import Blueprint, Quart, Response
from quart.typing import ResponseReturnValue

from tamma_trio.errors import StoreError, TaskNotFoundError, TransitionError
from tamma_trio.web.deps import WebDeps
from tamma_trio.web.errors import ApiError
from tamma_trio.web.ui.actions import register_actions
from tamma_trio.web.ui.pages import register_pages
from tamma_trio.web.ui.render import page, ui_blueprint
from tamma_trio.web.ui.session import current_viewer

log = logging.getLogger("tamma_trio.web.ui")

UI_PREFIX = "/ui"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def register_ui(app: Quart, deps: WebDeps) -> None:
    """Add the dashboard's routes to ``app``."""
    blueprint = ui_blueprint()
    register_pages(blueprint, deps)
    register_actions(blueprint, deps)
    _register_static(blueprint)
    _register_error_pages(blueprint, deps)
    app.register_blueprint(blueprint)


def _register_static(blueprint: Blueprint) -> None:
    """The few static files, read once at start: no path from a request ever reaches the disk."""
    folder = resources.files(__package__).joinpath("static")
    files = {
        entry.name: (entry.read_bytes(), _STATIC_TYPES[suffix])
        for entry in folder.iterdir()
        if (suffix := "." + entry.name.rpartition(".")[2]) in _STATIC_TYPES
    }

    @blueprint.route("/static/<name>")
    async def static_file(name: str) -> ResponseReturnValue:
        if name not in files:
            raise ApiError(404, "not_found", f"no static file {name!r}")
        body, content_type = files[name]
        response = Response(body, content_type=content_type)
        response.headers["Cache-Control"] = "max-age=300"
        return response


def _register_error_pages(blueprint: Blueprint, deps: WebDeps) -> None:
    token, wall = deps.config.api.token, deps.wall

    async def error_page(status: int, reason: str) -> ResponseReturnValue:
        context = {"viewer": current_viewer(token, wall), "token_configured": token is not None}
        return await page("ui/error.html", status=status, reason=reason, **context)

    async def not_found(exc: TaskNotFoundError) -> ResponseReturnValue:
        return await error_page(404, str(exc))

    async def conflict(exc: TransitionError) -> ResponseReturnValue:
        return await error_page(409, str(exc))

    async def refused(exc: ApiError) -> ResponseReturnValue:
        return await error_page(exc.status, exc.detail)

    async def store_down(exc: StoreError) -> ResponseReturnValue:
        log.warning("store unavailable for a dashboard page: %s", exc)
        return await error_page(503, "the task store did not answer; try again shortly")

    blueprint.register_error_handler(TaskNotFoundError, not_found)
    blueprint.register_error_handler(TransitionError, conflict)
    blueprint.register_error_handler(ApiError, refused)
    blueprint.register_error_handler(StoreError, store_down)
