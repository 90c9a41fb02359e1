"""The local forge's events as tasks: what a GitHub webhook would deliver, without a network.

An issue added with the trigger label (or assigned to the bot) is ``issue_assigned``; a pull
request the engine opened asks for review. Keys name the event, so replaying it adds nothing.
"""

from __future__ import annotations

from tamma_trio.models import IssueAssignedPayload, NewTask, PrReviewRequestedPayload, TaskType

ACTOR = "local-forge"


def review_task(repository: str, number: int) -> NewTask:
    """The task a forge webhook would create when a pull request asks for review."""
    payload = PrReviewRequestedPayload.model_validate(
        {"repository": repository, "pull_request": {"number": number}}
    )
    return NewTask(
        type=TaskType.PR_REVIEW_REQUESTED,
        payload=payload.model_dump(mode="json"),
        key=f"local-forge:{repository}:pr-opened:{number}",
        actor=ACTOR,
    )


def issue_task(repository: str, number: int, title: str, *, max_retries: int = 3) -> NewTask:
    """The task a webhook would create when an issue is assigned to (or labelled for) the bot."""
    payload = IssueAssignedPayload.model_validate(
        {"repository": repository, "issue": {"number": number, "title": title}}
    )
    return NewTask(
        type=TaskType.ISSUE_ASSIGNED,
        payload=payload.model_dump(mode="json"),
        key=f"local-forge:{repository}:issue-opened:{number}",
        actor=ACTOR,
        max_retries=max_retries,
    )
