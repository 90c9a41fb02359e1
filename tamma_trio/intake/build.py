"""NewTasks of the four types, built from what every door knows about an event.

Payloads go through their typed models here, once, so a door can never store a payload its
handler would not read.
"""

from __future__ import annotations

from typing import Any

from tamma_trio.errors import ValidationError
from tamma_trio.intake.intents import IssueRef
from tamma_trio.models import (
    IssueAssignedPayload,
    IssueCommentPayload,
    NewTask,
    PrCommentPayload,
    PrReviewRequestedPayload,
    Task,
    TaskStatus,
    TaskType,
    dump_payload,
)

ESCALATED_FOR_APPROVAL = "escalated_for_approval"


def _new(
    task_type: TaskType, payload: dict[str, Any], key: str, actor: str, **extra: Any
) -> NewTask:
    return NewTask(type=task_type, payload=payload, key=key, actor=actor, **extra)


def issue_assigned(
    target: IssueRef, *, key: str, actor: str, approval: dict[str, Any] | None = None, **extra: Any
) -> NewTask:
    """Work on an issue; ``approval`` ({"by", "of_task"}) runs an escalated plan approved."""
    raw: dict[str, Any] = {
        "repository": target.repository,
        "issue": {"number": target.number, "title": target.title},
    }
    if approval is not None:
        raw["approval"] = approval
    payload = dump_payload(IssueAssignedPayload.model_validate(raw))
    return _new(TaskType.ISSUE_ASSIGNED, payload, key, actor, **extra)


def approval_of(escalated: Task, by: str, *, key: str, actor: str) -> NewTask:
    """The issue of ``escalated`` again, its plan approved by ``by``; ValidationError when the
    task is not an issue task escalated for approval."""
    action = (escalated.result or {}).get("action")
    if (
        escalated.type is not TaskType.ISSUE_ASSIGNED
        and escalated.type is not TaskType.ISSUE_COMMENT
    ):
        raise ValidationError(f"task {escalated.id} is a {escalated.type.value} task, not an issue")
    if escalated.status is not TaskStatus.COMPLETED or action != ESCALATED_FOR_APPROVAL:
        raise ValidationError(
            f"task {escalated.id} is not waiting for approval ({action or escalated.status.value})"
        )
    issue = escalated.payload["issue"]
    target = IssueRef(
        str(escalated.payload["repository"]), int(issue["number"]), str(issue.get("title", ""))
    )
    approval = {"by": by, "of_task": escalated.id}
    return issue_assigned(target, key=key, actor=actor, approval=approval)


def review_requested(target: IssueRef, *, key: str, actor: str) -> NewTask:
    raw = {"repository": target.repository, "pull_request": {"number": target.number}}
    payload = dump_payload(PrReviewRequestedPayload.model_validate(raw))
    return _new(TaskType.PR_REVIEW_REQUESTED, payload, key, actor)


def comment_task(target: IssueRef, body: str, author: str, *, key: str, actor: str) -> NewTask:
    """issue_comment on an issue, pr_comment on a pull request: the handler obeys the command."""
    comment = {"body": body, "author": author}
    if target.is_pull_request:
        raw: dict[str, Any] = {
            "repository": target.repository,
            "pull_request": {"number": target.number},
            "comment": comment,
        }
        payload = dump_payload(PrCommentPayload.model_validate(raw))
        return _new(TaskType.PR_COMMENT, payload, key, actor)
    raw = {
        "repository": target.repository,
        "issue": {"number": target.number, "title": target.title},
        "comment": comment,
    }
    payload = dump_payload(IssueCommentPayload.model_validate(raw))
    return _new(TaskType.ISSUE_COMMENT, payload, key, actor)
