"""One exception tree for tamma-trio.

Callers at the edges (CLI, HTTP) map these classes to exit codes and status codes, so each class
says when it is raised and carries a message safe to show a user: no secret ever enters one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module; `--help` must not load pydantic
    from pydantic import ValidationError as PydanticValidationError


class TammaError(Exception):
    """Root of every error tamma-trio raises on purpose."""


class ConfigError(TammaError):
    """The configuration file or an environment override is invalid.

    ``problems`` lists each bad key as (dotted path, offending value, what is allowed) so the CLI
    can print all of them at once instead of making the operator fix one per run.
    """

    def __init__(self, message: str, problems: list[tuple[str, str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ValidationError(TammaError):
    """Input from outside (CLI, API, webhook) does not fit: an unknown type, a bad payload field."""


class FieldError(ValidationError):
    """One named input field is wrong; ``field`` lets the API answer with it, the CLI print it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class StoreError(TammaError):
    """The task store cannot be opened or used (not our database, corrupt, locked by a daemon)."""


class StoreBusyError(StoreError):
    """The store's write queue is full: the write was refused before anything was stored."""


class StoreLockedError(StoreError):
    """Another daemon already holds this store; two daemons on one file would double-run work."""


class TaskNotFoundError(TammaError):
    """No task has the given id."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"no task with id {task_id}")
        self.task_id = task_id


class TransitionError(TammaError):
    """A status change the task model forbids, e.g. cancelling a completed task."""


class LeaseLostError(TammaError):
    """The caller's lease token no longer matches: the task was re-claimed after its lease expired.

    The worker that gets this must drop its result, because a newer attempt owns the task.
    """


class EngineError(TammaError):
    """A workflow step failed.

    ``retryable`` decides between backoff and immediate escalation; ``code`` is a short stable
    identifier for metrics and events; ``context`` holds safe details for the escalation comment;
    ``retry_at`` (wall time) is the earliest a retry can succeed, e.g. a forge's rate-limit reset.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "engine_error",
        retryable: bool = True,
        context: Mapping[str, Any] | None = None,
        retry_at: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.context = dict(context or {})
        self.retry_at = retry_at


class StaleEventError(EngineError):
    """The event behind a task no longer holds when the engine reads the issue again: it was
    closed, assigned to someone else, or no longer assigned to the bot nor labelled for it.
    The task ends as ``ignored`` with this reason; nobody is told, since nothing went wrong."""

    def __init__(self, message: str, *, code: str = "stale_event") -> None:
        super().__init__(message, code=code, retryable=False)


def first_problem(exc: PydanticValidationError, whole: str = "") -> tuple[str, str]:
    """The first error's dotted path (``whole`` when it is about the whole value) and the line
    a client or an operator is shown for it: "path: what is wrong"."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or whole
    return where, f"{where}: {first['msg']}"


def sole_cause(exc: BaseException) -> BaseException:
    """The one error inside nested single-member groups (how a failed nursery child arrives);
    a group of several stays a group, so no error is hidden behind another."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
