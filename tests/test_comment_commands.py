"""Comment commands: only whole lines, only allowed authors, never the bot, never "don't merge"."""

from __future__ import annotations

import pytest

from tamma_trio.comment_commands import Command, command_lines, parse_command

BOT = "tamma"


def start(body: str, author: str = "alice", allowed: tuple[str, ...] = ()) -> Command | None:
    verdict = parse_command(
        body, author, expected=Command.START, bot_name=BOT, allowed_authors=allowed
    )
    return verdict.command


def merge(body: str, author: str = "alice", allowed: tuple[str, ...] = ()) -> Command | None:
    verdict = parse_command(
        body, author, expected=Command.MERGE, bot_name=BOT, allowed_authors=allowed
    )
    return verdict.command


@pytest.mark.parametrize(
    "body",
    [
        "/tamma start",
        "/TAMMA Start",
        "  /tamma start  ",
        "@tamma start",
        "@Tamma start",
        "/tamma start please",
        "Looks good.\n/tamma start\nthanks",
        "/tamma\tstart",
    ],
)
def test_start_commands(body: str) -> None:
    assert start(body) is Command.START


@pytest.mark.parametrize(
    "body",
    [
        "please /tamma start",
        "don't /tamma start",
        "/tamma started it yesterday",
        "/tamma starting",
        "@someoneelse start",
        "@tammabot start",
        "/tamma merge",
        "> /tamma start",
        "```\n/tamma start\n```",
        "~~~\n@tamma start\n~~~",
        "/tammastart",
        "start",
        "",
    ],
)
def test_not_start_commands(body: str) -> None:
    assert start(body) is None


@pytest.mark.parametrize(
    "body",
    ["/tamma merge", "lgtm", "LGTM", "  lgtm  ", "Reviewed.\nlgtm", "/tamma merge now"],
)
def test_merge_commands(body: str) -> None:
    assert merge(body) is Command.MERGE


@pytest.mark.parametrize(
    "body",
    [
        "don't merge",
        "do not merge this",
        "please don't /tamma merge",
        "merge",
        "lgtm!",
        "lgtm, but fix the typo first",
        "not lgtm",
        "@tamma merge",
        "/tamma start",
        "> lgtm",
        "```\nlgtm\n```",
    ],
)
def test_not_merge_commands(body: str) -> None:
    assert merge(body) is None


def test_the_bot_never_commands_itself() -> None:
    for author in ("tamma", "TAMMA", "tamma[bot]"):
        verdict = parse_command("/tamma start", author, expected=Command.START, bot_name=BOT)
        assert verdict.command is None
        assert verdict.reason == "comment written by the bot itself"


def test_allowed_authors_filter_when_set() -> None:
    assert start("/tamma start", "alice", allowed=("Alice", "bob")) is Command.START
    verdict = parse_command(
        "/tamma start", "mallory", expected=Command.START, bot_name=BOT, allowed_authors=("alice",)
    )
    assert verdict.command is None
    assert verdict.reason == "mallory is not allowed to give commands"


def test_reason_names_the_expected_spelling() -> None:
    verdict = parse_command("please merge", "alice", expected=Command.MERGE, bot_name=BOT)
    assert verdict.reason == "no /tamma merge or lgtm command at the start of a line"
    verdict = parse_command("hi", "alice", expected=Command.START, bot_name="robo")
    assert verdict.reason == "no /tamma start or @robo start command at the start of a line"


def test_accepted_command_says_who_gave_it() -> None:
    verdict = parse_command("lgtm", "bob", expected=Command.MERGE, bot_name=BOT)
    assert verdict.reason == "merge command from bob"


def test_fences_toggle_and_quotes_are_skipped() -> None:
    body = "```\n/tamma start\n```\n> lgtm\n/tamma merge"
    assert list(command_lines(body)) == ["/tamma merge"]
