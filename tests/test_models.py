"""The task model: payload validation per type, subjects and allowed transitions."""

import pytest

from tamma_trio.errors import TransitionError, ValidationError
from tamma_trio.models import (
    NewTask,
    TaskStatus,
    TaskType,
    check_transition,
    validate_payload,
)

ISSUE = {"repository": "acme/widgets", "issue": {"number": 42, "title": "Fix it"}}
PR = {"repository": "acme/widgets", "pull_request": {"number": 7}}
COMMENT = {"body": "/tamma start", "author": "alice"}


@pytest.mark.parametrize(
    ("task_type", "payload"),
    [
        (TaskType.ISSUE_ASSIGNED, ISSUE),
        (TaskType.ISSUE_COMMENT, {**ISSUE, "comment": COMMENT}),
        (TaskType.PR_REVIEW_REQUESTED, PR),
        (TaskType.PR_COMMENT, {**PR, "comment": COMMENT}),
    ],
)
def test_story_payloads_validate(task_type: TaskType, payload: dict[str, object]) -> None:
    assert validate_payload(task_type, payload) == payload


def test_camel_case_is_accepted_and_extra_fields_are_kept() -> None:
    raw = {"repository": "acme/widgets", "pullRequest": {"number": 7}, "deliveryId": "abc"}
    clean = validate_payload(TaskType.PR_REVIEW_REQUESTED, raw)
    assert clean == {
        "repository": "acme/widgets",
        "pull_request": {"number": 7},
        "deliveryId": "abc",
    }


@pytest.mark.parametrize(
    ("task_type", "payload", "field"),
    [
        (TaskType.ISSUE_ASSIGNED, {"repository": "acme/widgets"}, "issue"),
        (TaskType.ISSUE_ASSIGNED, {**ISSUE, "repository": "no-slash"}, "repository"),
        (TaskType.ISSUE_ASSIGNED, {**ISSUE, "repository": "../etc"}, "repository"),
        (TaskType.ISSUE_ASSIGNED, {**ISSUE, "repository": "acme/.."}, "repository"),
        (TaskType.ISSUE_ASSIGNED, {**ISSUE, "issue": {"number": 0}}, "issue.number"),
        (TaskType.ISSUE_COMMENT, ISSUE, "comment"),
        (TaskType.PR_COMMENT, {**PR, "comment": {"body": "x"}}, "comment.author"),
    ],
)
def test_bad_payload_names_the_field(task_type: TaskType, payload: object, field: str) -> None:
    with pytest.raises(ValidationError, match=rf"{field}:"):
        validate_payload(task_type, payload)


def test_payload_must_be_an_object() -> None:
    with pytest.raises(ValidationError, match="JSON object"):
        validate_payload(TaskType.ISSUE_ASSIGNED, [1, 2])


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"unknown task type 'deploy'.*issue_assigned"):
        NewTask.build("deploy", ISSUE)


@pytest.mark.parametrize(
    ("priority", "max_retries", "reason"), [(4, 3, "priority"), (1, 11, "max_retries")]
)
def test_out_of_range_options_are_refused(priority: int, max_retries: int, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        NewTask.build("issue_assigned", ISSUE, priority=priority, max_retries=max_retries)


def test_issue_and_pull_request_of_one_number_are_two_subjects() -> None:
    """GitLab's issue #42 and merge request !42 are different objects: their tasks must not
    wait for, or be cancelled with, each other."""
    issue = NewTask.build("issue_comment", {**ISSUE, "comment": COMMENT})
    pr = NewTask.build(
        "pr_review_requested", {"repository": "acme/widgets", "pull_request": {"number": 42}}
    )
    assert (issue.subject, pr.subject) == ("acme/widgets#42", "acme/widgets#!42")


def test_terminal_statuses_only_reopen_by_retry() -> None:
    check_transition(TaskStatus.FAILED, TaskStatus.QUEUED)
    with pytest.raises(TransitionError, match="a completed task cannot become queued"):
        check_transition(TaskStatus.COMPLETED, TaskStatus.QUEUED)
    with pytest.raises(TransitionError):
        check_transition(TaskStatus.QUEUED, TaskStatus.COMPLETED)
