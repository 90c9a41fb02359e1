"""GitLab deliveries as intents: Issue Hook, Note Hook, Merge Request Hook and Pipeline Hook.

A successful pipeline and an approval both mean a merge request of the bot's that was left
waiting may now be mergeable: they become ChecksPassed, which re-evaluates only merge requests
whose latest task is monitoring (so only ones the bot opened), as check_suite does on GitHub.

GitLab says who was added by listing ``changes.<field>.previous`` and ``current``; the bot is
"newly" an assignee or reviewer when it is in current and not in previous (an event without a
``changes`` entry for the field changed nothing there). Every authenticated event the bot does
not act on is still answered 2xx by the route: GitLab disables a hook whose deliveries keep
getting 4xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tamma_trio.comment_commands import ISSUE_COMMANDS, PULL_REQUEST_COMMANDS, find_command, is_bot
from tamma_trio.intake import build
from tamma_trio.intake.github import Rules, parse
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
from tamma_trio.repositories import GITLAB_MAX_LENGTH

FORGE = "gitlab"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class User(_Part):
    username: str = Field(min_length=1, max_length=255)


class Label(_Part):
    title: str


class Project(_Part):
    # A full path may run through subgroups; the served allowlist decides what is acted on.
    path_with_namespace: str = Field(min_length=1, max_length=GITLAB_MAX_LENGTH)


class Item(_Part):
    """An issue or merge request as the hooks carry it: its project-local number is ``iid``."""

    iid: Number
    title: str = ""
    action: str = ""


class MergeRequestItem(Item):
    """A merge request also names its source branch: the bot's branches name their issue."""

    source_branch: str = ""


class UsersChange(_Part):
    previous: list[User] = Field(default_factory=list)
    current: list[User] = Field(default_factory=list)


class LabelsChange(_Part):
    previous: list[Label] = Field(default_factory=list)
    current: list[Label] = Field(default_factory=list)


class Changes(_Part):
    assignees: UsersChange | None = None
    reviewers: UsersChange | None = None
    labels: LabelsChange | None = None


class _Hook(_Part):
    user: User
    project: Project


class IssueHook(_Hook):
    object_attributes: Item
    changes: Changes = Changes()


class MergeRequestHook(_Hook):
    object_attributes: MergeRequestItem
    changes: Changes = Changes()


class PipelineAttributes(_Part):
    status: str
    ref: str = ""


class PipelineHook(_Hook):
    object_attributes: PipelineAttributes
    merge_request: MergeRequestItem | None = None


class Note(_Part):
    note: str = ""
    noteable_type: str


class NoteHook(_Hook):
    object_attributes: Note
    issue: Item | None = None
    merge_request: Item | None = None


def _newly(change: UsersChange | None, bot: str) -> bool:
    if change is None:
        return False
    now = any(is_bot(user.username, bot) for user in change.current)
    before = any(is_bot(user.username, bot) for user in change.previous)
    return now and not before


def _label_added(change: LabelsChange | None, label: str) -> bool:
    if change is None:
        return False
    return label in {lb.title for lb in change.current} - {lb.title for lb in change.previous}


def _key(delivery_id: str) -> str:
    return f"{FORGE}:{delivery_id}"


def _on_issue(hook: IssueHook, delivery_id: str, rules: Rules) -> Intent:
    item = hook.object_attributes
    target = IssueRef(hook.project.path_with_namespace, item.iid, item.title)
    assigned = _newly(hook.changes.assignees, rules.bot)
    if assigned or _label_added(hook.changes.labels, rules.trigger_label):
        return Enqueue((build.issue_assigned(target, key=_key(delivery_id), actor=FORGE),))
    if item.action == "close":
        return Cancel(target)
    return Ignore(f"Issue Hook {item.action or '(no action)'} does not concern {rules.bot}")


def _on_merge_request(hook: MergeRequestHook, delivery_id: str, rules: Rules) -> Intent:
    item = hook.object_attributes
    target = IssueRef(hook.project.path_with_namespace, item.iid, item.title, is_pull_request=True)
    if _newly(hook.changes.reviewers, rules.bot):
        return Enqueue((build.review_requested(target, key=_key(delivery_id), actor=FORGE),))
    if item.action == "approved":
        branches = (item.source_branch,) if item.source_branch else ()
        return ChecksPassed(hook.project.path_with_namespace, (item.iid,), branches)
    if item.action in ("close", "merge"):
        return Cancel(target)
    return Ignore(f"Merge Request Hook {item.action or '(no action)'} does not concern {rules.bot}")


def _on_pipeline(hook: PipelineHook, delivery_id: str, rules: Rules) -> Intent:
    pipeline = hook.object_attributes
    if pipeline.status != "success":
        return Ignore(f"pipeline {pipeline.status}")
    mr = hook.merge_request
    numbers = (mr.iid,) if mr is not None else ()
    # A merge request pipeline's ref is refs/merge-requests/<iid>/head; its branch is the MR's.
    branches = (pipeline.ref, *((mr.source_branch,) if mr and mr.source_branch else ()))
    return ChecksPassed(hook.project.path_with_namespace, numbers, tuple(dict.fromkeys(branches)))


def _on_note(hook: NoteHook, delivery_id: str, rules: Rules) -> Intent:
    note = hook.object_attributes
    pull = note.noteable_type == "MergeRequest"
    item = hook.merge_request if pull else hook.issue
    if note.noteable_type not in ("Issue", "MergeRequest") or item is None:
        return Ignore(f"a note on a {note.noteable_type} carries no command for the bot")
    target = IssueRef(hook.project.path_with_namespace, item.iid, item.title, is_pull_request=pull)
    allowed = PULL_REQUEST_COMMANDS if pull else ISSUE_COMMANDS
    command = find_command(note.note, allowed=allowed, bot_name=rules.bot)
    if command is None:
        return Ignore("the note holds no command at the start of a line")
    return CommandComment(target, command, note.note, Author(hook.user.username))


MAPPINGS: dict[str, tuple[type[_Hook], Any]] = {
    "Issue Hook": (IssueHook, _on_issue),
    "Confidential Issue Hook": (IssueHook, _on_issue),
    "Note Hook": (NoteHook, _on_note),
    "Confidential Note Hook": (NoteHook, _on_note),
    "Merge Request Hook": (MergeRequestHook, _on_merge_request),
    "Pipeline Hook": (PipelineHook, _on_pipeline),
}


def intent_of(event: str, body: Mapping[str, Any], delivery_id: str, rules: Rules) -> Intent:
    """What a delivery of ``event`` (the X-Gitlab-Event header) asks for."""
    known = MAPPINGS.get(event)
    if known is None:
        return Ignore(f"event {event} is not one the bot handles")
    model, mapper = known
    hook = parse(model, body)
    if hook.project.path_with_namespace not in rules.served:
        return Ignore(f"repository {hook.project.path_with_namespace} is not served")
    if is_bot(hook.user.username, rules.bot):
        return Ignore("sent by the bot itself")
    intent: Intent = mapper(hook, delivery_id, rules)
    return intent


def summary(body: Mapping[str, Any]) -> tuple[str, str, str]:
    """(action, repository, sender) for the deliveries log, read without trusting the shape."""
    attributes, project, user = (
        body.get(name) for name in ("object_attributes", "project", "user")
    )
    return (
        _text(attributes, "action"),
        _text(project, "path_with_namespace"),
        _text(user, "username"),
    )


def _text(part: Any, name: str) -> str:
    value = part.get(name) if isinstance(part, dict) else None
    return value if isinstance(value, str) else ""
