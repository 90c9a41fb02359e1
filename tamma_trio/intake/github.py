"""GitHub deliveries as intents: typed models of the payload parts we read, and the mapping.

Only the fields the bot acts on are modelled (pydantic ignores the rest); a delivery that lacks
one of them, or carries it with the wrong type, is a 400 naming the field. Which events map to
what is the table of the README's webhook section.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from tamma_trio.comment_commands import ISSUE_COMMANDS, PULL_REQUEST_COMMANDS, find_command, is_bot
from tamma_trio.errors import FieldError, first_problem
from tamma_trio.intake import build
from tamma_trio.intake.intents import (
    Author,
    Cancel,
    ChecksPassed,
    CommandComment,
    Enqueue,
    Ignore,
    Intent,
    IssueRef,
)
from tamma_trio.models import Number

FORGE = "github"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class User(_Part):
    login: str = Field(min_length=1, max_length=100)
    type: str = "User"


class Label(_Part):
    name: str


class Repository(_Part):
    full_name: str = Field(min_length=1, max_length=200)


class Issue(_Part):
    number: Number
    title: str = ""
    pull_request: dict[str, Any] | None = None  # present when the issue is a pull request


class Comment(_Part):
    body: str = ""
    user: User
    author_association: str = "NONE"


class PullRequest(_Part):
    number: Number
    title: str = ""
    user: User


class Review(_Part):
    state: str
    user: User


class PullNumber(_Part):
    number: Number


class CheckSuite(_Part):
    head_sha: str
    conclusion: str | None = None
    pull_requests: list[PullNumber] = Field(default_factory=list)


class Branch(_Part):
    name: str


class _Event(_Part):
    action: str = ""
    repository: Repository
    sender: User


class IssuesEvent(_Event):
    issue: Issue
    assignee: User | None = None
    label: Label | None = None


class IssueCommentEvent(_Event):
    issue: Issue
    comment: Comment


class PullRequestEvent(_Event):
    pull_request: PullRequest
    requested_reviewer: User | None = None  # absent when a team was requested instead


class PullRequestReviewEvent(_Event):
    review: Review
    pull_request: PullRequest


class CheckSuiteEvent(_Event):
    check_suite: CheckSuite


class StatusEvent(_Event):
    sha: str
    state: Literal["pending", "success", "failure", "error"]
    branches: list[Branch] = Field(default_factory=list)


class Ping(_Part):
    hook_id: int | None = None
    zen: str = ""


@dataclass(frozen=True)
class Rules:
    """What the mapping needs from the configuration."""

    bot: str
    trigger_label: str
    served: frozenset[str]


def parse(model: type[BaseModel], body: Mapping[str, Any]) -> Any:
    """``body`` as ``model``, or a FieldError naming the first missing or mistyped field."""
    try:
        return model.model_validate(body)
    except PydanticValidationError as exc:
        raise FieldError(*first_problem(exc, "body")) from None


def _key(delivery_id: str) -> str:
    return f"{FORGE}:{delivery_id}"


def _target(repository: str, number: int, title: str, *, pull: bool) -> IssueRef:
    return IssueRef(repository, number, title, is_pull_request=pull)


def _is_the_bot(user: User | None, rules: Rules) -> bool:
    return user is not None and is_bot(user.login, rules.bot)


def _on_issues(event: IssuesEvent, delivery_id: str, rules: Rules) -> Intent:
    issue = event.issue
    target = _target(event.repository.full_name, issue.number, issue.title, pull=False)
    if issue.pull_request is not None:
        return Ignore("issues event about a pull request")
    wanted = event.action == "assigned" and _is_the_bot(event.assignee, rules)
    labelled = event.action == "labeled" and event.label is not None
    if wanted or (labelled and event.label is not None and event.label.name == rules.trigger_label):
        task = build.issue_assigned(target, key=_key(delivery_id), actor="webhook")
        return Enqueue((task,))
    if event.action == "closed" or (
        event.action == "unassigned" and _is_the_bot(event.assignee, rules)
    ):
        return Cancel(target)
    return Ignore(f"issues {event.action or '(no action)'} does not concern {rules.bot}")


def _on_comment(event: IssueCommentEvent, delivery_id: str, rules: Rules) -> Intent:
    if event.action != "created":
        return Ignore(f"issue_comment {event.action}: only new comments carry commands")
    issue = event.issue
    pull = issue.pull_request is not None
    target = _target(event.repository.full_name, issue.number, issue.title, pull=pull)
    allowed = PULL_REQUEST_COMMANDS if pull else ISSUE_COMMANDS
    command = find_command(event.comment.body, allowed=allowed, bot_name=rules.bot)
    if command is None:
        return Ignore("the comment holds no command at the start of a line")
    user = event.comment.user
    author = Author(user.login, user.type == "Bot", event.comment.author_association)
    return CommandComment(target, command, event.comment.body, author)


def _on_pull_request(event: PullRequestEvent, delivery_id: str, rules: Rules) -> Intent:
    pull = event.pull_request
    target = _target(event.repository.full_name, pull.number, pull.title, pull=True)
    if event.action == "review_requested" and _is_the_bot(event.requested_reviewer, rules):
        return Enqueue((build.review_requested(target, key=_key(delivery_id), actor="webhook"),))
    if event.action == "closed":
        return Cancel(target)
    return Ignore(f"pull_request {event.action or '(no action)'} does not concern {rules.bot}")


def _on_review(event: PullRequestReviewEvent, delivery_id: str, rules: Rules) -> Intent:
    pull = event.pull_request
    approved = event.action == "submitted" and event.review.state.lower() == "approved"
    if not approved or not _is_the_bot(pull.user, rules):
        return Ignore("only an approval of the bot's own pull request is acted on")
    target = _target(event.repository.full_name, pull.number, pull.title, pull=True)
    return Enqueue((build.review_requested(target, key=_key(delivery_id), actor="webhook"),))


def _on_check_suite(event: CheckSuiteEvent, delivery_id: str, rules: Rules) -> Intent:
    suite = event.check_suite
    if event.action != "completed" or suite.conclusion != "success":
        return Ignore(f"check_suite {event.action} with conclusion {suite.conclusion}")
    numbers = tuple(pull.number for pull in suite.pull_requests)
    return ChecksPassed(event.repository.full_name, numbers, ())


def _on_status(event: StatusEvent, delivery_id: str, rules: Rules) -> Intent:
    if event.state != "success":
        return Ignore(f"status {event.state}")
    branches = tuple(branch.name for branch in event.branches)
    return ChecksPassed(event.repository.full_name, (), branches)


Mapper = Callable[[Any, str, Rules], Intent]
MAPPINGS: dict[str, tuple[type[_Event], Mapper]] = {
    "issues": (IssuesEvent, _on_issues),
    "issue_comment": (IssueCommentEvent, _on_comment),
    "pull_request": (PullRequestEvent, _on_pull_request),
    "pull_request_review": (PullRequestReviewEvent, _on_review),
    "check_suite": (CheckSuiteEvent, _on_check_suite),
    "status": (StatusEvent, _on_status),
}


def intent_of(event: str, body: Mapping[str, Any], delivery_id: str, rules: Rules) -> Intent:
    """What a delivery of ``event`` asks for; FieldError for a payload we cannot read."""
    known = MAPPINGS.get(event)
    if known is None:
        return Ignore(f"event {event} is not one the bot handles")
    model, mapper = known
    parsed = parse(model, body)
    if parsed.repository.full_name not in rules.served:
        return Ignore(f"repository {parsed.repository.full_name} is not served")
    if _is_the_bot(parsed.sender, rules):
        return Ignore("sent by the bot itself")
    intent: Intent = mapper(parsed, delivery_id, rules)
    return intent


def summary(body: Mapping[str, Any]) -> tuple[str, str, str]:
    """(action, repository, sender) for the deliveries log, read without trusting the shape."""
    repository = body.get("repository")
    sender = body.get("sender")
    return (
        _text(body.get("action")),
        _text(repository.get("full_name")) if isinstance(repository, dict) else "",
        _text(sender.get("login")) if isinstance(sender, dict) else "",
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
