"""Who may command the bot: the one place a comment's command is allowed or refused.

The rules, in order, each refusal naming its rule for the deliveries log:
never the bot itself; never an account of type Bot; on GitHub the comment's author_association
must be trusted (a hint only: GitHub reports private org members as CONTRIBUTOR, and a payload
can be replayed), and the login must be on ``[service] command_authors`` when that is set; on
GitLab, whose payloads carry no association, the login must be on ``[webhooks.gitlab]
command_authors`` (empty: nobody) unless a GitLab forge is configured, whose live access-level
check then decides alone; the local forge has only ``[service] command_authors``.
Last, the engine is asked live whether the login may write to the repository, so a claim in the
payload alone never makes anyone a commander.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from tamma_trio.comment_commands import Command, is_bot
from tamma_trio.intake.intents import Author

MayCommand = Callable[[str, str], Awaitable[bool]]  # (repository, login) -> allowed


@dataclass(frozen=True)
class CommandRules:
    bot: str
    trusted_associations: frozenset[str]
    service_authors: frozenset[str]  # [service] command_authors, lower case; empty: any
    gitlab_authors: frozenset[str]  # [webhooks.gitlab] command_authors, lower case; empty: none
    gitlab_live: bool = False  # a GitLab forge checks access levels live: no list needed

    @classmethod
    def build(
        cls,
        bot: str,
        trusted: Iterable[str],
        service_authors: Iterable[str],
        gitlab_authors: Iterable[str],
        *,
        gitlab_live: bool = False,
    ) -> CommandRules:
        return cls(
            bot,
            frozenset(trusted),
            frozenset(name.lower() for name in service_authors),
            frozenset(name.lower() for name in gitlab_authors),
            gitlab_live,
        )


def rule_refusing(forge: str, author: Author, command: Command, rules: CommandRules) -> str | None:
    """The payload-level rule that refuses ``author``'s command, or None when all pass."""
    login = author.login.lower()
    if is_bot(author.login, rules.bot):
        return "the bot never commands itself"
    if command is Command.APPROVE and login == rules.bot.lower():
        return "the bot can never approve"
    if author.is_bot_account:
        return f"{author.login} is a Bot account"
    if forge == "gitlab":
        if not rules.gitlab_live and login not in rules.gitlab_authors:
            return f"{author.login} is not on [webhooks.gitlab] command_authors"
        return None
    trusted = (author.association or "NONE") in rules.trusted_associations
    if forge == "github" and not trusted:
        return f"author_association {author.association} of {author.login} is not trusted"
    if rules.service_authors and login not in rules.service_authors:
        return f"{author.login} is not on [service] command_authors"
    return None


async def refusal(
    forge: str,
    repository: str,
    author: Author,
    command: Command,
    rules: CommandRules,
    may_command: MayCommand,
) -> str | None:
    """Why ``author`` may not give ``command`` on ``repository``, or None: obey it."""
    refused = rule_refusing(forge, author, command, rules)
    if refused is not None:
        return refused
    if not await may_command(repository, author.login):
        return f"{author.login} has no write permission on {repository} (live check)"
    return None
