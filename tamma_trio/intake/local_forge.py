"""The local forge's events as tasks: what a GitHub webhook would deliver, without a network.

An issue added with the trigger label (or assigned to the bot) is ``issue_assigned``; a pull
request the engine opened asks for review. Keys name the event, so replaying it adds nothing.
"""

from __future__ import annotations

from tamma_trio.intake import build
from tamma_trio.intake.intents import IssueRef
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
