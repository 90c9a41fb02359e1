"""GitHub App authentication against the fake: the App's identity from GET /app, an installation
token per repository, cached, replaced before it expires (mid-task), fetched again when GitHub
refuses it early; git pushes with the installation token."""

from __future__ import annotations

from pathlib import Path

import pytest

from tamma_trio.engine.forge.github.auth import REFRESH_MARGIN, AppCredentials
from tamma_trio.engine.git_auth import basic_auth_env
from tamma_trio.errors import EngineError
from tamma_trio.step_records import Target
from tests.fake_github import APP_SLUG, FakeGitHub, serving
from tests.github_helpers import REPO, fake_with_repo, make_forge, rsa_key_pair
from tests.store_helpers import FakeWall
from tests.workflow_helpers import git_out

APP_ID = 4242
BOT = f"{APP_SLUG}[bot]"


def app_fake(tmp_path: Path, wall: FakeWall, *repos: str) -> tuple[FakeGitHub, bytes]:
    private, public = rsa_key_pair()
    fake = fake_with_repo(tmp_path, *repos, wall=wall)
    fake.app_id, fake.app_public_key = APP_ID, public
    return fake, private


async def test_app_token_is_cached_and_refreshed_before_it_expires(tmp_path: Path) -> None:
    wall = FakeWall()
    fake, key = app_fake(tmp_path, wall)
    number = fake.add_issue(REPO, "t")
    target = Target(repository=REPO, number=number)
    async with serving(fake):
        credentials = AppCredentials(APP_ID, key, wall=wall)
        forge, _ = make_forge(fake, credentials=credentials, bot_name=BOT, wall=wall)
        async with forge:  # GET /app with the JWT: the bot is <slug>[bot]
            await forge.comment(target, "first", BOT)
            await forge.comment(target, "second", BOT)
            wall.advance(fake.token_lifetime - REFRESH_MARGIN + 1)  # the task runs on, near expiry
            await forge.comment(target, "third", BOT)
    assert fake.calls("POST", "/access_tokens$") == 2
    assert fake.calls("GET", f"/repos/{REPO}/installation$") == 1
    authors = {c["user"]["login"] for c in fake.repos[REPO].comments[number]}
    assert authors == {BOT} and len(fake.repos[REPO].comments[number]) == 3


async def test_app_token_refused_early_is_fetched_again(tmp_path: Path) -> None:
    wall = FakeWall()
    fake, key = app_fake(tmp_path, wall)
    number = fake.add_issue(REPO, "t")
    async with serving(fake):
        credentials = AppCredentials(APP_ID, key, wall=wall)
        forge, _ = make_forge(fake, credentials=credentials, bot_name=BOT, wall=wall)
        await forge.get_issue(REPO, number)
        fake.installation_tokens.clear()  # revoked (or the clocks disagree): GitHub says 401
        issue = await forge.get_issue(REPO, number)
        await forge.aclose()
    assert issue.number == number and fake.calls("POST", "/access_tokens$") == 2


async def test_app_installation_per_repository(tmp_path: Path) -> None:
    wall = FakeWall()
    fake, key = app_fake(tmp_path, wall, REPO, "acme/other")
    async with serving(fake):
        credentials = AppCredentials(APP_ID, key, wall=wall)
        forge, _ = make_forge(
            fake,
            credentials=credentials,
            bot_name=BOT,
            wall=wall,
            repositories=(REPO, "acme/other"),
        )
        async with forge:
            one = await credentials.git_token(REPO)
            two = await credentials.git_token("acme/other")
    assert one != two
    assert {fake.installation_tokens[one][0], fake.installation_tokens[two][0]} == {1, 2}


async def test_a_wrong_key_refuses_to_start(tmp_path: Path) -> None:
    wall = FakeWall()
    fake, _key = app_fake(tmp_path, wall)
    other_key, _ = rsa_key_pair()
    async with serving(fake):
        forge, _ = make_forge(
            fake, credentials=AppCredentials(APP_ID, other_key, wall=wall), bot_name=BOT
        )
        with pytest.raises(EngineError) as caught:
            async with forge:
                pass
    assert caught.value.code == "unauthorized" and not caught.value.retryable


async def test_git_pushes_with_the_installation_token_after_a_refresh(tmp_path: Path) -> None:
    """git_env carries a fresh token: a push after the first token expired still works."""
    wall = FakeWall()
    fake, key = app_fake(tmp_path, wall)
    work = tmp_path / "work"
    async with serving(fake):
        credentials = AppCredentials(APP_ID, key, wall=wall)
        forge, _ = make_forge(fake, credentials=credentials, bot_name=BOT, wall=wall)
        info = await forge.repository(REPO)
        env = dict(await forge.git_env(REPO))
        await _git(["clone", "-q", info.clone_url, str(work)], tmp_path, env)
        wall.advance(fake.token_lifetime + 1)  # the first token is dead now
        fresh = dict(await forge.git_env(REPO))
        (work / "f.txt").write_text("x\n")
        await _git(["add", "-A"], work, fresh)
        await _git(["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "m"], work, fresh)
        stale = await _git(["push", "-q", "origin", "HEAD:refs/heads/x"], work, env, check=False)
        await _git(["push", "-q", "origin", "HEAD:refs/heads/x"], work, fresh)
        await forge.aclose()
    assert stale != 0 and env != fresh
    assert git_out(fake.repos[REPO].bare, "rev-parse", "x") == git_out(work, "rev-parse", "HEAD")
    assert fresh == basic_auth_env(info.clone_url, "x-access-token", await_token(fake, fresh))


def await_token(fake: FakeGitHub, env: dict[str, str]) -> str:
    """The live installation token the environment's header carries."""
    import base64

    header = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: Basic ")
    token = base64.b64decode(header).decode().partition(":")[2]
    assert token in fake.installation_tokens
    return token


async def _git(args: list[str], cwd: Path, env: dict[str, str], *, check: bool = True) -> int:
    import trio

    base = {"PATH": "/usr/bin:/bin:/usr/local/bin", "GIT_TERMINAL_PROMPT": "0", "HOME": str(cwd)}
    done = await trio.run_process(
        ["git", *args], cwd=str(cwd), env={**base, **env}, check=check, capture_stderr=True
    )
    return done.returncode
