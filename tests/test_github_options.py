"""The `[engine.forge]` table with kind = "github": what it accepts, what it refuses, and that
the token is never echoed (config errors, `config check`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tamma_trio.engine.base import EngineContext
from tamma_trio.engine.forge.github.build import build_github_forge
from tamma_trio.engine.workflow_options import GithubForgeOptions, parse_options
from tamma_trio.errors import ConfigError

SECRET = "ghp_THIS_MUST_NOT_SHOW_0123456789"


def github(**forge: object) -> dict[str, object]:
    return {"forge": {"kind": "github", "repositories": ["acme/demo"], **forge}}


def test_defaults_and_relative_key_path(tmp_path: Path) -> None:
    options = parse_options(github(app_id=7, private_key_path="keys/app.pem")).resolved(tmp_path)
    forge = options.forge
    assert isinstance(forge, GithubForgeOptions)
    assert forge.api_url == "https://api.github.com" and forge.merge_method == "merge"
    assert forge.required_approvals == 1 and forge.checks_grace == 120
    assert (
        forge.command_permission == "write" and forge.private_key_path == tmp_path / "keys/app.pem"
    )
    assert options.repo_root("acme/demo") == tmp_path / "workspaces" / "acme__demo"


@pytest.mark.parametrize(
    ("forge", "where", "problem"),
    [
        ({"token": SECRET, "merge_method": "fast-forward"}, "engine.forge.merge_method", "'merge'"),
        (
            {"token": SECRET, "command_permission": "owner"},
            "engine.forge.command_permission",
            "'admin'",
        ),
        ({"token": SECRET, "api_url": "api.github.com"}, "engine.forge.api_url", "pattern"),
        ({"token": SECRET, "app_id": 1, "private_key_path": "k"}, "engine.forge", "exactly one"),
        ({"token": SECRET, "repositories": []}, "engine.forge.repositories", "at least 1"),
        ({"token": SECRET, "origin": "x"}, "engine.forge.origin", "unknown key"),
    ],
)
def test_bad_github_options_name_the_key_and_never_the_token(
    forge: dict[str, object], where: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(github(**forge))
    problems = caught.value.problems
    assert any(path == where and problem in message for path, _, message in problems), problems
    assert SECRET not in repr(problems)


def test_an_unreadable_private_key_is_a_config_error(tmp_path: Path) -> None:
    options = parse_options(github(app_id=7, private_key_path=str(tmp_path / "missing.pem")))
    assert isinstance(options.forge, GithubForgeOptions)
    with pytest.raises(ConfigError) as caught:
        build_github_forge(options.forge, EngineContext(bot_name="b", database_path=None))
    assert caught.value.problems[0][0] == "engine.forge.private_key_path"


def test_config_check_masks_the_forge_token(tmp_path: Path) -> None:
    config = tmp_path / "tamma.toml"
    python = json.dumps(sys.executable)
    config.write_text(
        f'[engine.forge]\nkind = "github"\nrepositories = ["acme/demo"]\ntoken = "{SECRET}"\n'
        f'[engine.agent]\ncommand = [{python}, "-c", "pass"]\n'
        f'[engine.tests]\ncommand = [{python}, "-c", "pass"]\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "tamma_trio", "config", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr and 'token = "**********"' in done.stdout
