"""The local forge's events as tasks: what a GitHub webhook would deliver, without a network.

An issue added with the trigger label (or assigned to the bot) is ``issue_assigned``; a pull
request the engine opened asks for review. Keys name the event, so replaying it adds nothing.
"""

from __future__ import annotations

from tamma_trio.comment_commands import ISSUE_COMMANDS, PULL_REQUEST_COMMANDS, find_command
from tamma_trio.intake import build
from tamma_trio.intake.intents import Author, CommandComment, Ignore, Intent, IssueRef
from tamma_trio.models import NewTask

ACTOR = "local-forge"


def review_task(repository: str, number: int) -> NewTask:
    """The task a forge webhook would create when a pull request asks for review."""
    key = f"local-forge:{repository}:pr-opened:{number}"
    return build.review_requested(IssueRef(repository, number), key=key, actor=ACTOR)


def issue_task(repository: str, number: int, title: str, *, max_retries: int = 3) -> NewTask:
    """The task a webhook would create when an issue is assigned to (or labelled for) the bot."""
    key = f"local-forge:{repository}:issue-opened:{number}"
    target = IssueRef(repository, number, title)
    return build.issue_assigned(target, key=key, actor=ACTOR, max_retries=max_retries)


def comment_intent(target: IssueRef, body: str, author: str, bot: str) -> Intent:
    """A comment added to the local forge, read as a forge would deliver it."""
    allowed = PULL_REQUEST_COMMANDS if target.is_pull_request else ISSUE_COMMANDS
    command = find_command(body, allowed=allowed, bot_name=bot)
    if command is None:
        return Ignore("the comment holds no command at the start of a line")
    return CommandComment(target, command, body, Author(author))
