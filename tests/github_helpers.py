"""Shared pieces of the GitHub forge tests: a fake GitHub over a seeded bare repository, a forge
or an engine pointed at it, and an RSA key for App tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tamma_trio.engine.forge.github.auth import AppCredentials, TokenCredentials
from tamma_trio.engine.forge.github.client import GitHubClient
from tamma_trio.engine.forge.github.forge import GitCredentials, GitHubForge
from tamma_trio.engine.forge.github.pulls import MergeSettings
from tamma_trio.engine.forge.seed import init_origin
from tamma_trio.status import ForgeStats
from tests.fake_github import FakeGitHub

REPO = "acme/demo"
BOT = "tamma-bot"
TOKEN = "ghp_SECRETtoken1234567890"


def fake_with_repo(tmp_path: Path, *repos: str, wall: Any = None) -> FakeGitHub:
    """A fake GitHub that knows TOKEN as BOT's and serves each repository over a bare repo."""
    fake = FakeGitHub(tokens={TOKEN: BOT}, **({"wall": wall} if wall else {}))
    for index, name in enumerate(repos or (REPO,)):
        bare = tmp_path / "remote" / f"{name.replace('/', '__')}.git"
        init_origin(bare)
        fake.add_repo(name, bare, installation_id=index + 1)
    return fake


class Sleeps:
    """An injected sleep: records each wait and returns at once (no real or virtual time)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_forge(
    fake: FakeGitHub,
    *,
    credentials: GitCredentials | None = None,
    repositories: tuple[str, ...] = (REPO,),
    bot_name: str = BOT,
    sleeps: Sleeps | None = None,
    wall: Any = None,
    max_wait: float = 60,
    **merging: Any,
) -> tuple[GitHubForge, ForgeStats]:
    credentials = credentials or TokenCredentials(TOKEN)
    stats = ForgeStats()
    sleep = sleeps or Sleeps()
    clock = wall or fake.wall
    client = GitHubClient(
        fake.base_url, credentials, stats=stats, max_wait=max_wait, wall=clock, sleep=sleep
    )
    if isinstance(credentials, AppCredentials):
        credentials.client = client
    forge = GitHubForge(
        client,
        credentials,
        repositories=repositories,
        bot_name=bot_name,
        merging=MergeSettings(**merging),
        wall=clock,
        sleep=sleep,
    )
    return forge, stats


def rsa_key_pair() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) for a GitHub App test."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def github_engine_options(tmp_path: Path, fake: FakeGitHub, agent: Any, **forge: Any) -> Any:
    return {
        "workspace_dir": str(tmp_path / "workspaces"),
        "git_timeout": 30,
        "forge": {
            "kind": "github",
            "api_url": fake.base_url,
            "repositories": [REPO],
            "token": TOKEN,
            "checks_grace": 0,
            **forge,
        },
        "agent": {"command": agent, "timeout": 30, "kill_grace": 1},
        "tests": {"command": ["python", "-m", "unittest", "-q"], "timeout": 60},
    }
