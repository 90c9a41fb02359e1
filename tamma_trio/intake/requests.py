"""Task requests from the API and the CLI: type, payload, priority, max_retries and key.

Both doors hand the same mapping to ``new_task_from``, which checks the envelope in one typed
model and the payload once against its type's model, and names the first bad field. Values are
strict: ``"2"``, ``true`` and ``2.0`` are not the priority 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from tamma_trio import repositories
from tamma_trio.errors import FieldError, ValidationError
from tamma_trio.models import NewTask, TaskPriority, parse_task_type, validate_payload

# A batch is validated whole before anything is stored, and written in one transaction.
MAX_BATCH = 500

_FIELD_RULES = {
    "type": "type must be a string naming a task type",
    "payload": "payload must be a JSON object",
    "priority": "priority must be an integer from 0 to 3",
    "max_retries": "max_retries must be an integer from 0 to 10",
    "key": "key must be a string of 1 to 200 characters, or null",
}


class TaskRequest(BaseModel):
    """The envelope of one task request; the payload is checked against its type afterwards."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: str
    payload: dict[str, Any]
    priority: int = Field(default=TaskPriority.NORMAL, ge=0, le=3)
    max_retries: int | None = Field(default=None, ge=0, le=10)
    key: str | None = Field(default=None, min_length=1, max_length=200)


def shorten(name: str) -> str:
    """A client's key may be a megabyte long; show its start only."""
    return name if len(name) <= 60 else name[:57] + "..."


def _envelope_error(exc: PydanticValidationError) -> FieldError:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "body"
    if first["type"] == "extra_forbidden":
        shown = shorten(field)
        return FieldError(shown, f"unknown field {shown!r}")
    if first["type"] == "missing":
        return FieldError(field, f"{field} is required")
    return FieldError(field, _FIELD_RULES.get(field, f"{field}: {first['msg']}"))


def new_task_from(
    body: Mapping[str, Any], *, default_retries: int, actor: str, forge_kind: str = "local"
) -> NewTask:
    """Validate one task request into a NewTask; FieldError names the first bad field.

    The repository must be one the configured forge (``forge_kind``) can name: a GitLab full
    path with subgroups on GitLab, GitHub's ``owner/name`` everywhere else.
    """
    try:
        request = TaskRequest.model_validate(body)
    except PydanticValidationError as exc:
        raise _envelope_error(exc) from None
    try:
        task_type = parse_task_type(request.type)
    except ValidationError as exc:
        raise FieldError("type", str(exc)) from None
    try:
        payload = validate_payload(task_type, request.payload)
    except ValidationError as exc:
        raise FieldError("payload", str(exc)) from None
    try:
        repositories.check_for(forge_kind, str(payload["repository"]))
    except ValueError as exc:
        detail = f"invalid payload for {task_type.value}: repository: {exc}"
        raise FieldError("payload", detail) from None
    retries = default_retries if request.max_retries is None else request.max_retries
    return NewTask(
        type=task_type,
        payload=payload,
        priority=TaskPriority(request.priority),
        max_retries=retries,
        key=request.key,
        actor=actor,
    )


def new_tasks_from(
    body: Mapping[str, Any], *, default_retries: int, actor: str, forge_kind: str = "local"
) -> list[NewTask]:
    """Validate a batch ``{"tasks": [...]}``; the first bad task is named by its index."""
    unknown = set(body) - {"tasks"}
    if unknown:
        shown = shorten(min(unknown))
        raise FieldError(shown, f"unknown field {shown!r}")
    items = body.get("tasks")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise FieldError("tasks", f"tasks must be a list of 1 to {MAX_BATCH} task objects")
    news: list[NewTask] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise FieldError(f"tasks[{index}]", f"tasks[{index}] must be a JSON object")
        try:
            news.append(
                new_task_from(
                    item, default_retries=default_retries, actor=actor, forge_kind=forge_kind
                )
            )
        except FieldError as exc:
            raise FieldError(f"tasks[{index}].{exc.field}", f"tasks[{index}]: {exc}") from None
    return news
