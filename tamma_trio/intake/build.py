"""NewTasks of the four types, built from what every door knows about an event.

Payloads go through their typed models here, once, so a door can never store a payload its
handler would not read.
"""

from __future__ import annotations

from typing import Any

from tamma_trio.intake.intents import IssueRef
from tamma_trio.models import (
    IssueAssignedPayload,
    IssueCommentPayload,
    NewTask,
    PrCommentPayload,
    PrReviewRequestedPayload,
    TaskType,
    dump_payload,
)


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
