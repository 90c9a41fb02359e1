"""The dashboard's POSTs: log in, log out, cancel and retry a task.

Every POST passes three checks before it touches anything: the browser's Origin (when sent) is
this site, the viewer holds a session, and the form's CSRF token belongs to that session. With no
token configured there is no session to hold, so the dashboard is read-only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from quart import Blueprint, redirect, request, url_for
from quart.typing import ResponseReturnValue
from werkzeug.sansio.response import Response as SansioResponse

from tamma_trio.models import Task
from tamma_trio.web.auth import token_matches
from tamma_trio.web.deps import WebDeps
from tamma_trio.web.ui.render import page
from tamma_trio.web.ui.session import (
    COOKIE_NAME,
    SESSION_SECONDS,
    csrf_valid,
    current_viewer,
    new_session,
    safe_next,
    same_origin_post,
)

ACTOR = "ui"
_TASK = "/tasks/<int(min=1, max=9223372036854775807):task_id>"


class ActionRefusedError(Exception):
    """A POST that fails a check; the page says why, and nothing was changed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def register_actions(blueprint: Blueprint, deps: WebDeps) -> None:
    store, token, wall = deps.store, deps.config.api.token, deps.wall

    async def checked_form() -> dict[str, str]:
        if not same_origin_post():
            raise ActionRefusedError(403, "the form was posted from another site")
        if token is None:
            raise ActionRefusedError(403, "read-only: no [service.api] token is configured")
        who = current_viewer(token, wall)
        if who.session is None:
            raise ActionRefusedError(401, "log in first")
        form = (await request.form).to_dict()
        if not csrf_valid(token, who.session, form.get("csrf", "")):
            raise ActionRefusedError(403, "the form is stale or forged (CSRF token mismatch)")
        return form

    async def act(task_id: int, change: Callable[[int], Awaitable[Task]]) -> ResponseReturnValue:
        await checked_form()
        await change(task_id)
        return redirect(url_for("ui.task", task_id=task_id), 303)

    @blueprint.route(_TASK + "/cancel", methods=["POST"])
    async def cancel(task_id: int) -> ResponseReturnValue:
        return await act(task_id, lambda task_id: store.cancel(task_id, actor=ACTOR))

    @blueprint.route(_TASK + "/retry", methods=["POST"])
    async def retry(task_id: int) -> ResponseReturnValue:
        async def retried(task_id: int) -> Task:
            task = await store.retry(task_id, actor=ACTOR)
            deps.wake()
            return task

        return await act(task_id, retried)

    @blueprint.route("/login", methods=["POST"])
    async def login() -> ResponseReturnValue:
        if not same_origin_post():
            raise ActionRefusedError(403, "the form was posted from another site")
        form = (await request.form).to_dict()
        target = safe_next(form.get("next"), url_for("ui.overview"))
        if token is None:
            raise ActionRefusedError(403, "read-only: no [service.api] token is configured")
        if not token_matches(form.get("token", ""), token.get_secret_value()):
            who = current_viewer(token, wall)
            context = {"viewer": who, "next": target, "failed": True, "token_configured": True}
            return await page("ui/login.html", status=401, **context)
        response = redirect(target, 303)
        _set_cookie(response, new_session(token, wall()), SESSION_SECONDS)
        return response

    @blueprint.route("/logout", methods=["POST"])
    async def logout() -> ResponseReturnValue:
        await checked_form()
        response = redirect(url_for("ui.login_form"), 303)
        _set_cookie(response, "", 0)
        return response

    async def refused(exc: ActionRefusedError) -> ResponseReturnValue:
        who = current_viewer(token, wall)
        context = {"viewer": who, "reason": exc.reason, "token_configured": token is not None}
        return await page("ui/error.html", status=exc.status, **context)

    blueprint.register_error_handler(ActionRefusedError, refused)


def _set_cookie(response: SansioResponse, value: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=max_age,
        path="/ui",
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
    )
