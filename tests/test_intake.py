"""The intake package: one "store, then wake" path, and the local forge's events as tasks."""

from __future__ import annotations

from typing import Any

import pytest

from tamma_trio.errors import FieldError
from tamma_trio.intake import Intake
from tamma_trio.intake.local_forge import issue_task, review_task
from tamma_trio.intake.requests import new_task_from, new_tasks_from
from tamma_trio.models import TaskType
from tests.web_fixtures import OpenMemoryStore, Wakes

REQUEST: dict[str, Any] = {
    "type": "pr_review_requested",
    "payload": {"repository": "o/r", "pullRequest": {"number": 3}, "extra": {"kept": True}},
}


async def test_submit_stores_then_wakes_once_and_not_for_known_keys(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    wakes = Wakes()
    intake = Intake(await memory_store(), wakes)
    news = [issue_task("o/r", 1, "one"), issue_task("o/r", 2, "two")]
    first = await intake.submit(news, source="forge")
    assert [created for _task, created in first] == [True, True] and wakes.count == 1
    again = await intake.submit(news, source="forge")
    assert [task.id for task, _ in again] == [task.id for task, _ in first]
    assert [created for _task, created in again] == [False, False] and wakes.count == 1
    assert await intake.submit([], source="api") == [] and wakes.count == 1


def test_local_forge_events_are_keyed_on_the_event() -> None:
    issue = issue_task("local/demo", 4, "Add a farewell", max_retries=1)
    assert issue.type is TaskType.ISSUE_ASSIGNED and issue.actor == "local-forge"
    assert issue.payload == {
        "repository": "local/demo",
        "issue": {"number": 4, "title": "Add a farewell"},
    }
    assert issue.key == "local-forge:local/demo:issue-opened:4" and issue.max_retries == 1
    review = review_task("local/demo", 5)
    assert review.subject == "local/demo#!5" and review.key == "local-forge:local/demo:pr-opened:5"


def test_a_request_is_parsed_once_into_a_task() -> None:
    new = new_task_from(REQUEST, default_retries=2, actor="cli")
    assert new.type is TaskType.PR_REVIEW_REQUESTED and new.max_retries == 2
    assert new.payload == {
        "repository": "o/r",
        "pull_request": {"number": 3},
        "extra": {"kept": True},
    }
    assert new.actor == "cli" and new.key is None


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"payload": {}}, "type", "type is required"),
        ({**REQUEST, "priority": 4}, "priority", "priority must be an integer from 0 to 3"),
        ({**REQUEST, "key": ""}, "key", "key must be a string of 1 to 200 characters"),
        ({**REQUEST, "colour": 1}, "colour", "unknown field 'colour'"),
        ({**REQUEST, "type": "deploy"}, "type", "unknown task type 'deploy'"),
        ({**REQUEST, "payload": {"repository": "o/r"}}, "payload", "pull_request: Field required"),
    ],
)
def test_a_bad_request_names_its_field(body: Any, field: str, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        new_task_from(body, default_retries=3, actor="api")
    assert caught.value.field == field and message in str(caught.value)


def test_a_bad_batch_item_is_named_by_its_index() -> None:
    with pytest.raises(FieldError) as caught:
        new_tasks_from(
            {"tasks": [REQUEST, {**REQUEST, "priority": "2"}]}, default_retries=3, actor="api"
        )
    assert caught.value.field == "tasks[1].priority"
    assert str(caught.value).startswith("tasks[1]: priority must be an integer")
