"""The tasks API: list, show, add, cancel and retry tasks over HTTP.

Every input is checked before the store is called, so a rejected request leaves nothing behind;
task requests are parsed by the intake package (the same code as `tasks add`), and added tasks
reach the store through its one "store, then wake" path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from quart import Quart, request
from quart.typing import ResponseReturnValue

from tamma_trio.errors import FieldError, ValidationError
from tamma_trio.intake.requests import new_task_from, new_tasks_from, shorten
from tamma_trio.log import task_logger
from tamma_trio.models import TaskStatus, TaskType, check_repository, parse_task_type
from tamma_trio.web.auth import require_mutation_allowed, require_read_allowed
from tamma_trio.web.body import ascii_int, read_json_object, read_optional_json_object
from tamma_trio.web.deps import WebDeps
from tamma_trio.web.errors import NO_STORE, ApiError

log = logging.getLogger("tamma_trio.web.api")

TASKS_PATH = "/api/tasks"
# SQLite integers are signed 64-bit; a larger id must be a 404, not an overflow inside the store.
_TASK_PATH = TASKS_PATH + "/<int(min=1, max=9223372036854775807):task_id>"

MAX_PAGE = 500
DEFAULT_PAGE = 50
_LIST_FILTERS = ("status", "type", "repository", "text", "before", "limit", "offset")
MAX_TEXT = 200


def _invalid(field: str, detail: str) -> ApiError:
    return ApiError(400, "invalid_field", detail, field=field)


def _field_error(exc: FieldError) -> ApiError:
    return _invalid(exc.field, str(exc))


def _unknown(kind: str, names: set[str]) -> ApiError:
    """Name the first unknown key, cut short: a client's key may be a megabyte long."""
    shown = shorten(min(names))
    return _invalid(shown, f"unknown {kind} {shown!r}")


def _query_int(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    value = ascii_int(raw, low, high)
    if value is None:
        raise _invalid(name, f"{name} must be an integer from {low} to {high}")
    return value


def query_page(args: Mapping[str, str]) -> tuple[int, int]:
    """(limit, offset) of a list that takes no other query parameter."""
    unknown = set(args) - {"limit", "offset"}
    if unknown:
        raise _unknown("query parameter", unknown)
    limit = _query_int(args, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    return limit, _query_int(args, "offset", 0, 0, 2**62)


def _query_repository(args: Mapping[str, str]) -> str | None:
    raw = args.get("repository")
    if raw is None:
        return None
    try:
        return check_repository(raw)
    except ValueError as exc:
        raise _invalid("repository", f"repository {exc}") from None


def _query_text(args: Mapping[str, str]) -> str | None:
    raw = args.get("text")
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_TEXT:
        raise _invalid("text", f"text must be 1 to {MAX_TEXT} characters")
    return raw


def list_filters(args: Mapping[str, str]) -> dict[str, Any]:
    """Query string -> keyword arguments of TaskStore.list_tasks."""
    unknown = set(args) - set(_LIST_FILTERS)
    if unknown:
        raise _unknown("query parameter", unknown)
    status: TaskStatus | None = None
    if "status" in args:
        if args["status"] not in set(TaskStatus):
            known = ", ".join(s.value for s in TaskStatus)
            raise _invalid("status", f"status must be one of: {known}")
        status = TaskStatus(args["status"])
    task_type: TaskType | None = None
    if "type" in args:
        try:
            task_type = parse_task_type(args["type"])
        except ValidationError as exc:
            raise _invalid("type", str(exc)) from None
    before = args.get("before")
    return {
        "status": status,
        "type": task_type,
        "repository": _query_repository(args),
        "text": _query_text(args),
        "before": None if before is None else _query_int(args, "before", 0, 1, 2**63 - 1),
        "limit": _query_int(args, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
        "offset": _query_int(args, "offset", 0, 0, 2**62),
    }


def register_api_routes(app: Quart, deps: WebDeps) -> None:
    store, api = deps.store, deps.config.api

    async def list_tasks() -> ResponseReturnValue:
        require_read_allowed(api.token)
        filters = list_filters(request.args)
        tasks = await store.list_tasks(**filters)
        body = {
            "tasks": [task.public() for task in tasks],
            "count": len(tasks),
            "limit": filters["limit"],
            "offset": filters["offset"],
        }
        return body, 200, NO_STORE

    async def show_task(task_id: int) -> ResponseReturnValue:
        require_read_allowed(api.token)
        task = await store.get(task_id)
        events = await store.events(task_id)
        body = {**task.public(), "events": [event.model_dump(mode="json") for event in events]}
        return body, 200, NO_STORE

    async def add_task() -> ResponseReturnValue:
        require_mutation_allowed(api.token)
        body = await read_json_object(api.max_body_bytes)
        try:
            new = new_task_from(
                body,
                default_retries=deps.config.max_retries,
                actor="api",
                forge_kind=deps.forge_kind,
            )
        except FieldError as exc:
            raise _field_error(exc) from None
        task, created = await deps.intake.submit_one(new, source="api")
        if not created:
            return task.public(), 200, NO_STORE
        task_logger(task, log.name).info("added through the API (priority %d)", task.priority)
        return task.public(), 201, {**NO_STORE, "Location": f"{TASKS_PATH}/{task.id}"}

    async def add_tasks() -> ResponseReturnValue:
        require_mutation_allowed(api.token)
        body = await read_json_object(api.max_body_bytes)
        try:
            news = new_tasks_from(
                body,
                default_retries=deps.config.max_retries,
                actor="api",
                forge_kind=deps.forge_kind,
            )
        except FieldError as exc:
            raise _field_error(exc) from None
        added = await deps.intake.submit(news, source="api")
        created = sum(1 for _task, is_new in added if is_new)
        if created:
            log.info("added %d task(s) through the API in one batch", created)
        tasks = [task.public() for task, _is_new in added]
        return {"tasks": tasks, "created": created}, 201 if created else 200, NO_STORE

    async def cancel_task(task_id: int) -> ResponseReturnValue:
        require_mutation_allowed(api.token)
        await read_optional_json_object(api.max_body_bytes)
        task = await store.cancel(task_id, actor="api")
        return task.public(), 200, NO_STORE

    async def retry_task(task_id: int) -> ResponseReturnValue:
        require_mutation_allowed(api.token)
        await read_optional_json_object(api.max_body_bytes)
        task = await store.retry(task_id, actor="api")
        deps.wake()
        return task.public(), 200, NO_STORE

    app.add_url_rule(TASKS_PATH, "list_tasks", list_tasks, methods=["GET"])
    app.add_url_rule(TASKS_PATH, "add_task", add_task, methods=["POST"])
    app.add_url_rule(TASKS_PATH + "/batch", "add_tasks", add_tasks, methods=["POST"])
    app.add_url_rule(_TASK_PATH, "show_task", show_task, methods=["GET"])
    app.add_url_rule(_TASK_PATH + "/cancel", "cancel_task", cancel_task, methods=["POST"])
    app.add_url_rule(_TASK_PATH + "/retry", "retry_task", retry_task, methods=["POST"])
