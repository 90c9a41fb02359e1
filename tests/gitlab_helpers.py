"""Shared pieces of the GitLab forge tests: a fake GitLab over a seeded bare repository, and a
forge or engine options pointed at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tamma_trio.engine.forge.gitlab.client import GitLabClient
from tamma_trio.engine.forge.gitlab.forge import GitLabForge
from tamma_trio.engine.forge.merging import MergeSettings
from tamma_trio.engine.forge.seed import init_origin
from tamma_trio.status import ForgeStats
from tests.fake_gitlab import FakeGitLab
from tests.github_helpers import Sleeps
from tests.workflow_helpers import git_out

PROJECT = "acme/tools/demo"  # a subgroup: full paths are the project's id
BOT = "tamma-bot"
TOKEN = "glpat-SECRETtoken1234567890"


def fake_with_project(tmp_path: Path, *paths: str) -> FakeGitLab:
    """A fake GitLab that knows TOKEN as BOT's and serves each project over a bare repository."""
    fake = FakeGitLab(tokens={TOKEN: BOT})
    fake.user(BOT)
    for name in paths or (PROJECT,):
        bare = tmp_path / "remote" / f"{name.replace('/', '__')}.git"
        init_origin(bare)
        fake.add_project(name, bare)
    return fake


def make_forge(
    fake: FakeGitLab,
    *,
    bot_name: str = BOT,
    token: str = TOKEN,
    sleeps: Sleeps | None = None,
    max_wait: float = 60,
    **merging: Any,
) -> tuple[GitLabForge, ForgeStats]:
    stats = ForgeStats()
    sleep = sleeps or Sleeps()
    client = GitLabClient(
        fake.api_url, token, stats=stats, max_wait=max_wait, wall=fake.wall, sleep=sleep
    )
    forge = GitLabForge(
        client,
        token,
        repositories=(PROJECT,),
        bot_name=bot_name,
        merging=MergeSettings(**merging),
        wall=fake.wall,
        sleep=sleep,
    )
    return forge, stats


def push_to(bare: Path, tmp_path: Path, branch: str, text: str = "x\n") -> str:
    """A commit on ``branch`` in ``bare`` (someone pushed it); its sha."""
    work = tmp_path / f"work-{branch.replace('/', '-')}"
    git_out(tmp_path, "clone", "-q", str(bare), str(work))
    (work / "change.txt").write_text(text)
    ident = ["-c", "user.name=t", "-c", "user.email=t@x"]
    git_out(work, "checkout", "-q", "-b", branch)
    git_out(work, "add", "-A")
    git_out(work, *ident, "commit", "-q", "-m", "change")
    git_out(work, "push", "-q", "origin", branch)
    return git_out(work, "rev-parse", "HEAD")


def gitlab_engine_options(tmp_path: Path, fake: FakeGitLab, agent: Any, **forge: Any) -> Any:
    return {
        "workspace_dir": str(tmp_path / "workspaces"),
        "git_timeout": 30,
        "forge": {
            "kind": "gitlab",
            "api_url": fake.api_url,
            "repositories": [PROJECT],
            "token": TOKEN,
            "checks_grace": 0,
            **forge,
        },
        "agent": {"command": agent, "timeout": 30, "kill_grace": 1},
        "tests": {"command": ["python", "-m", "unittest", "-q"], "timeout": 60},
    }
