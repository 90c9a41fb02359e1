"""Commands in comments: `/tamma start|approve|retry|cancel` (or `@<bot> start` ...) on issues,
`/tamma merge` or a line that is exactly `lgtm` on pull requests.

A command counts only as a line of its own (after trimming), outside fenced code and quotes,
from an allowed author and never from the bot itself. Matching any comment *containing*
"merge" would merge on "don't merge this"; here the whole line has to be the command.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum


class Command(StrEnum):
    START = "start"
    MERGE = "merge"
    APPROVE = "approve"  # run an issue escalated for approval with its plan approved
    RETRY = "retry"  # run a failed or escalated task of the subject again
    CANCEL = "cancel"  # cancel the subject's active tasks


ISSUE_COMMANDS = (Command.START, Command.APPROVE, Command.RETRY, Command.CANCEL)
PULL_REQUEST_COMMANDS = (Command.MERGE, Command.RETRY, Command.CANCEL)


@dataclass(frozen=True)
class CommandVerdict:
    """The command found (None when the comment is not one) and why, for the task's result."""

    command: Command | None
    reason: str


# "/tamma start", "@bot start", "/tamma merge", optionally followed by a note: "/tamma start now".
_COMMAND = re.compile(
    r"""^(?: /tamma | @(?P<mention>[A-Za-z0-9_.\[\]-]+) )
        \s+ (?P<verb>start|merge|approve|retry|cancel)
        (?: \s.* )?$""",
    re.IGNORECASE | re.VERBOSE,
)
_FENCE = re.compile(r"^(```|~~~)")


def parse_command(
    body: str,
    author: str,
    *,
    expected: Command,
    bot_name: str,
    allowed_authors: Iterable[str] = (),
) -> CommandVerdict:
    """Find ``expected`` in a comment by ``author``; anything else is a verdict with no command.

    ``allowed_authors`` empty means anyone but the bot may give commands.
    """
    if _is_bot(author, bot_name):
        return CommandVerdict(None, "comment written by the bot itself")
    allowed = {name.lower() for name in allowed_authors}
    if allowed and author.lower() not in allowed:
        return CommandVerdict(None, f"{author} is not allowed to give commands")
    for line in command_lines(body):
        if _matches(line, expected, bot_name):
            return CommandVerdict(expected, f"{expected.value} command from {author}")
    return CommandVerdict(
        None, f"no {_spelling(expected, bot_name)} command at the start of a line"
    )


def find_command(body: str, *, allowed: Iterable[Command], bot_name: str) -> Command | None:
    """The first command of ``allowed`` on a line of its own (outside code and quotes), if any.

    Who wrote the comment is not looked at here: that is the caller's rule to apply.
    """
    wanted = tuple(allowed)
    for line in command_lines(body):
        for command in wanted:
            if _matches(line, command, bot_name):
                return command
    return None


def is_bot(author: str, bot_name: str) -> bool:
    """GitHub Apps comment as "<name>[bot]"; both spellings are the bot."""
    return _is_bot(author, bot_name)


def command_lines(body: str) -> Iterator[str]:
    """The trimmed lines that may carry a command: not inside fenced code, not quoted."""
    fenced = False
    for raw in body.splitlines():
        line = raw.strip()
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced or line.startswith(">"):
            continue
        yield line


def _matches(line: str, expected: Command, bot_name: str) -> bool:
    if expected is Command.MERGE and line.lower() == "lgtm":
        return True
    found = _COMMAND.match(line)
    if found is None or found["verb"].lower() != expected.value:
        return False
    mention = found["mention"]
    if mention is None:
        return True
    # "@bot merge" is not a merge spelling (a bare mention is too easy to write by accident);
    # "@bot start" (approve...) is.
    return expected is not Command.MERGE and mention.lower() == bot_name.lower()


def _is_bot(author: str, bot_name: str) -> bool:
    """GitHub Apps comment as "<name>[bot]"; both spellings are the bot."""
    login = author.lower()
    name = bot_name.lower()
    return login in (name, f"{name}[bot]")


def _spelling(expected: Command, bot_name: str) -> str:
    if expected is Command.START:
        return f"/tamma start or @{bot_name} start"
    return "/tamma merge or lgtm"
