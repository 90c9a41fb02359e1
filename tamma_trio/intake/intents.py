"""What a forge event asks of the daemon, before anything is looked up or stored.

The forge mappings (github.py, gitlab.py) are pure: an event in, one intent out. Intents that
need the daemon's own records or a live permission check (a command in a comment, CI turning
green) are resolved by resolve.py; the rest go straight to the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from tamma_trio.comment_commands import Command
from tamma_trio.models import NewTask, issue_subject, pull_subject


@dataclass(frozen=True)
class Ignore:
    """Nothing for the bot; the reason goes to the deliveries log and the 2xx answer."""

    reason: str


@dataclass(frozen=True)
class Refuse:
    """A command from someone who may not command the bot; ``reason`` names the rule."""

    reason: str


@dataclass(frozen=True)
class Enqueue:
    tasks: tuple[NewTask, ...]


@dataclass(frozen=True)
class IssueRef:
    """An issue or pull request the event is about."""

    repository: str
    number: int
    title: str = ""
    is_pull_request: bool = False

    @property
    def subject(self) -> str:
        if self.is_pull_request:
            return pull_subject(self.repository, self.number)
        return issue_subject(self.repository, self.number)


@dataclass(frozen=True)
class Cancel:
    """Cancel the subject's queued tasks (and running ones too, when a human asked)."""

    target: IssueRef
    include_running: bool = False


@dataclass(frozen=True)
class Retry:
    """Run the subject's failed or escalated task again."""

    target: IssueRef


@dataclass(frozen=True)
class Author:
    login: str
    is_bot_account: bool = False  # GitHub's user type "Bot"
    association: str | None = None  # GitHub's author_association; GitLab sends none


@dataclass(frozen=True)
class CommandComment:
    """A comment holding ``command``; who wrote it is checked before it is obeyed."""

    target: IssueRef
    command: Command
    body: str
    author: Author


@dataclass(frozen=True)
class ChecksPassed:
    """CI turned green on a head; a pull request of the bot's left waiting is looked at again."""

    repository: str
    pull_numbers: tuple[int, ...]  # pull requests GitHub matched to the head
    branches: tuple[str, ...]  # branches whose head the commit is (status events)


Intent = Ignore | Refuse | Enqueue | Cancel | Retry | CommandComment | ChecksPassed
