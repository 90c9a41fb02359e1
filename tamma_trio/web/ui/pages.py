"""The dashboard's pages: overview (and its live part), tasks, one task, and the login form.

Each page first asks session.current_viewer who is looking; without a token every page is
readable and read-only, with one a visitor without a session is sent to the login form.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, redirect, request, url_for
from quart.typing import ResponseReturnValue

from tamma_trio.models import TaskStatus, TaskType
from tamma_trio.web.api import list_filters
from tamma_trio.web.deps import WebDeps
from tamma_trio.web.ui import views
from tamma_trio.web.ui.render import page
from tamma_trio.web.ui.session import Viewer, csrf_token, current_viewer, safe_next

TASKS_PAGE = 50
# Query parameters the tasks page keeps from one page to the next (the API's own names).
_KEPT_FILTERS = ("status", "type", "repository", "text")


class LoginRequiredError(Exception):
    """The page needs a session: answered with a redirect to the login form."""


def register_pages(blueprint: Blueprint, deps: WebDeps) -> None:
    store, token, wall = deps.store, deps.config.api.token, deps.wall

    def viewer() -> Viewer:
        who = current_viewer(token, wall)
        if not who.can_read:
            raise LoginRequiredError()
        return who

    def context(who: Viewer, **values: Any) -> dict[str, Any]:
        csrf = csrf_token(token, who.session) if token and who.session else None
        return {
            "viewer": who,
            "csrf": csrf,
            "token_configured": token is not None,
            **values,
        }

    @blueprint.route("/")
    async def overview() -> ResponseReturnValue:
        who = viewer()
        data = await views.overview(store, wall())
        return await page("ui/overview.html", **context(who, overview=data, page="overview"))

    @blueprint.route("/live")
    async def overview_live() -> ResponseReturnValue:
        who = viewer()
        data = await views.overview(store, wall())
        return await page("ui/_live.html", **context(who, overview=data))

    @blueprint.route("/tasks")
    async def tasks() -> ResponseReturnValue:
        who = viewer()
        # An empty field of the filter form means "any", not an invalid value.
        args = {name: value for name, value in request.args.items() if value}
        filters = list_filters({**args, "limit": str(TASKS_PAGE + 1)})
        rows = await store.list_tasks(**filters)
        kept: dict[str, Any] = {name: args[name] for name in _KEPT_FILTERS if args.get(name)}
        older = None
        if len(rows) > TASKS_PAGE:
            rows = rows[:TASKS_PAGE]
            older = url_for("ui.tasks", **kept, before=rows[-1].id)
        return await page(
            "ui/tasks.html",
            **context(
                who,
                tasks=rows,
                filters=kept,
                older=older,
                newest=url_for("ui.tasks", **kept) if "before" in args else None,
                statuses=[s.value for s in TaskStatus],
                types=[t.value for t in TaskType],
                page="tasks",
            ),
        )

    @blueprint.route("/tasks/<int(min=1, max=9223372036854775807):task_id>")
    async def task(task_id: int) -> ResponseReturnValue:
        who = viewer()
        data = await views.task_page(store, task_id, wall())
        return await page("ui/task.html", **context(who, view=data, page="tasks"))

    @blueprint.route("/login")
    async def login_form() -> ResponseReturnValue:
        target = safe_next(request.args.get("next"), url_for("ui.overview"))
        who = current_viewer(token, wall)
        return await page("ui/login.html", **context(who, next=target, failed=False))

    async def to_login(_exc: LoginRequiredError) -> ResponseReturnValue:
        path = request.full_path.rstrip("?")
        login = url_for("ui.login_form", next=path)
        return redirect(login, 303)

    blueprint.register_error_handler(LoginRequiredError, to_login)
