"""The task model: what a task is, which payload each type takes, and which status changes exist.

Pure data and pure functions only, so every layer (intake, store, worker) can import it and the
rules live in one place.
"""

from __future__ import annotations

import datetime as dt
from enum import IntEnum, StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, field_serializer
from pydantic import ValidationError as PydanticValidationError

from tamma_trio import repositories
from tamma_trio.errors import TransitionError, ValidationError, first_problem
from tamma_trio.strict_json import check_value


class TaskType(StrEnum):
    ISSUE_ASSIGNED = "issue_assigned"
    ISSUE_COMMENT = "issue_comment"
    PR_REVIEW_REQUESTED = "pr_review_requested"
    PR_COMMENT = "pr_comment"


# The task types about an issue (their payload has "issue"); the rest are about a pull request.
ISSUE_TYPES = frozenset({TaskType.ISSUE_ASSIGNED, TaskType.ISSUE_COMMENT})


class TaskStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskPriority(IntEnum):
    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

# Every status change the store may make; anything else is a TransitionError.
ALLOWED_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.QUEUED: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.CANCELLED}),
    TaskStatus.IN_PROGRESS: frozenset(
        {TaskStatus.COMPLETED, TaskStatus.QUEUED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.FAILED: frozenset({TaskStatus.QUEUED}),
    TaskStatus.CANCELLED: frozenset({TaskStatus.QUEUED}),
    TaskStatus.COMPLETED: frozenset(),
}


def check_transition(current: TaskStatus, target: TaskStatus) -> None:
    """Raise TransitionError unless ``current -> target`` is an allowed status change."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise TransitionError(f"a {current.value} task cannot become {target.value}")


# --- payloads -------------------------------------------------------------------------------


class _Payload(BaseModel):
    """Base for payloads: extra fields are kept, Tamma's camelCase names are accepted.

    Strict: ``"12"``, ``true`` and ``3.0`` are not the integer 12, 1 or 3. A payload is data
    from outside; guessing what a sender meant hides its bugs until a handler acts on the guess.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True, strict=True)


# GitHub's GraphQL API numbers issues with a 32-bit Int; anything larger is not an issue, and
# 2**63 or more would not even fit the store's integer column.
MAX_NUMBER = 2**31 - 1
Number = Annotated[int, Field(ge=1, le=MAX_NUMBER)]


class IssueRef(_Payload):
    number: Number
    title: str = ""


class PullRequestRef(_Payload):
    number: Number


class CommentRef(_Payload):
    body: str
    author: str = Field(min_length=1)


def check_repository(value: str) -> str:
    """A repository name some forge allows (GitHub's ``owner/name`` or a GitLab full path);
    ValueError naming the rules otherwise. Each door also applies its own forge's rule."""
    return repositories.check_any(value)


Repository = Annotated[str, AfterValidator(check_repository)]


class Approval(_Payload):
    """A human approved the plan of an escalated task: its issue runs again past that stage."""

    by: str = Field(min_length=1, max_length=100)
    of_task: int = Field(ge=1, le=2**63 - 1)


class IssueAssignedPayload(_Payload):
    repository: Repository
    issue: IssueRef
    approval: Approval | None = None


class IssueCommentPayload(IssueAssignedPayload):
    comment: CommentRef


class PrReviewRequestedPayload(_Payload):
    repository: Repository
    pull_request: PullRequestRef = Field(
        validation_alias=AliasChoices("pull_request", "pullRequest")
    )


class PrCommentPayload(PrReviewRequestedPayload):
    comment: CommentRef


PAYLOAD_MODELS: dict[TaskType, type[_Payload]] = {
    TaskType.ISSUE_ASSIGNED: IssueAssignedPayload,
    TaskType.ISSUE_COMMENT: IssueCommentPayload,
    TaskType.PR_REVIEW_REQUESTED: PrReviewRequestedPayload,
    TaskType.PR_COMMENT: PrCommentPayload,
}


def parse_task_type(value: str) -> TaskType:
    """The TaskType named ``value``, or a ValidationError listing the known ones."""
    try:
        return TaskType(value)
    except ValueError:
        known = ", ".join(t.value for t in TaskType)
        raise ValidationError(f"unknown task type {value!r} (expected one of: {known})") from None


def validate_payload(task_type: TaskType, raw: Any) -> dict[str, Any]:
    """Check ``raw`` against the payload model of ``task_type`` and return it in snake_case.

    Extra fields survive untouched; the error names the first bad field by its dotted path.
    """
    if not isinstance(raw, dict):
        raise ValidationError(f"payload for {task_type.value} must be a JSON object")
    check_value(raw, "payload")
    model = PAYLOAD_MODELS[task_type]
    try:
        parsed = model.model_validate(raw)
    except PydanticValidationError as exc:
        _, problem = first_problem(exc, "payload")
        raise ValidationError(f"invalid payload for {task_type.value}: {problem}") from None
    return dump_payload(parsed)


def dump_payload(parsed: BaseModel) -> dict[str, Any]:
    """A payload model as stored: JSON values, snake_case, no ``approval`` when there is none."""
    data = parsed.model_dump(mode="json")
    if data.get("approval", ...) is None:
        del data["approval"]
    return data


def subject_of(task_type: TaskType, payload: dict[str, Any]) -> str:
    """The subject key that serialises work on one issue or pull request.

    ``owner/name#7`` is issue 7 and ``owner/name#!7`` pull (merge) request 7: GitLab numbers
    issues and merge requests apart, so issue #7 and merge request !7 are two objects whose
    tasks must neither wait for nor cancel each other. On GitHub a number is either an issue or
    a pull request, never both, so the two spellings never meet there. The ``#`` stays the
    separator the stores read the repository up to.
    """
    if task_type in ISSUE_TYPES:
        return issue_subject(str(payload["repository"]), int(payload["issue"]["number"]))
    return pull_subject(str(payload["repository"]), int(payload["pull_request"]["number"]))


def issue_subject(repository: str, number: int) -> str:
    return f"{repository}#{number}"


def pull_subject(repository: str, number: int) -> str:
    return f"{repository}#!{number}"


# --- tasks ----------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class NewTask(BaseModel):
    """A task as intake hands it to the store: validated, not yet numbered."""

    model_config = ConfigDict(frozen=True)

    type: TaskType
    payload: dict[str, Any]
    priority: TaskPriority = TaskPriority.NORMAL
    max_retries: int = Field(default=3, ge=0, le=10)
    key: str | None = Field(default=None, max_length=200)
    actor: str = "api"

    @classmethod
    def build(
        cls,
        type_name: str,
        payload: Any,
        *,
        priority: int = TaskPriority.NORMAL,
        max_retries: int = 3,
        key: str | None = None,
        actor: str = "api",
    ) -> NewTask:
        """Validate raw intake values into a NewTask, raising ValidationError with a reason."""
        task_type = parse_task_type(type_name)
        clean = validate_payload(task_type, payload)
        if priority not in tuple(TaskPriority):
            raise ValidationError(f"priority must be 0-3, got {priority!r}")
        if not 0 <= max_retries <= 10:
            raise ValidationError(f"max_retries must be 0-10, got {max_retries!r}")
        if key is not None and not 0 < len(key) <= 200:
            raise ValidationError("key must be 1-200 characters")
        return cls(
            type=task_type,
            payload=clean,
            priority=TaskPriority(priority),
            max_retries=max_retries,
            key=key,
            actor=actor,
        )

    @property
    def subject(self) -> str:
        return subject_of(self.type, self.payload)


class Task(BaseModel):
    """A stored task. Timestamps are aware UTC datetimes; JSON shows them as ISO 8601."""

    model_config = ConfigDict(frozen=True)

    id: int
    type: TaskType
    priority: TaskPriority
    payload: dict[str, Any]
    status: TaskStatus
    attempts: int = 0
    max_retries: int = 3
    not_before: dt.datetime
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    subject: str
    key: str | None = None
    interruptions: int = 0
    lease_owner: str | None = None
    lease_token: str | None = None
    lease_expires: dt.datetime | None = None
    progress: dict[str, Any] = Field(default_factory=dict)
    # Why the stored row could not be read (invalid UTF-8, a column that is not JSON), when it
    # could not; its payload, result and progress are then empty and the task fails unrun.
    undecodable: str | None = None

    @field_serializer("not_before", "created_at", "started_at", "finished_at", "lease_expires")
    def _dump_time(self, value: dt.datetime | None) -> str | None:
        return _iso(value)

    def public(self) -> dict[str, Any]:
        """The JSON shape for the CLI and the API (no lease internals); a row that
        could not be read also says why, under ``undecodable``."""
        shown = self.model_dump(
            mode="json",
            include={
                "id",
                "type",
                "priority",
                "payload",
                "status",
                "attempts",
                "max_retries",
                "not_before",
                "created_at",
                "started_at",
                "finished_at",
                "error",
                "result",
            },
        )
        if self.undecodable is not None:
            shown["undecodable"] = self.undecodable
        return shown


class TaskEvent(BaseModel):
    """One row of the append-only audit trail of a task."""

    model_config = ConfigDict(frozen=True)

    id: int
    task_id: int
    at: dt.datetime
    kind: str
    actor: str
    status: TaskStatus | None = None
    detail: dict[str, Any] = Field(default_factory=dict)

    @field_serializer("at")
    def _dump_at(self, value: dt.datetime) -> str:
        return value.isoformat()


class QueueStats(BaseModel):
    """Counts by status plus the queue's age, for `tasks stats`, /health and /metrics."""

    model_config = ConfigDict(frozen=True)

    by_status: dict[TaskStatus, int]
    queue_depth: int
    oldest_queued_age: float | None

    def public(self) -> dict[str, Any]:
        return {
            "by_status": {status.value: self.by_status.get(status, 0) for status in TaskStatus},
            "queue_depth": self.queue_depth,
            "oldest_queued_age": self.oldest_queued_age,
        }


class ThroughputBucket(BaseModel):
    """Tasks that ended in one time bucket, by how they ended (the dashboard's charts)."""

    model_config = ConfigDict(frozen=True)

    start: dt.datetime
    completed: int = 0
    failed: int = 0


# The result action of a plan that waits for a human (handlers set it, the worker turns it
# into an escalation.required event).
ESCALATED_FOR_APPROVAL = "escalated_for_approval"


class Outcome(BaseModel):
    """What a handler returns: the result ``action`` plus details stored on the task."""

    model_config = ConfigDict(frozen=True)

    action: str
    detail: dict[str, Any] = Field(default_factory=dict)

    def as_result(self) -> dict[str, Any]:
        return {"action": self.action, **self.detail}
