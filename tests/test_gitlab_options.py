"""The `[engine.forge]` table with kind = "gitlab": what it accepts, what it refuses (naming the
key, never the token)."""

from __future__ import annotations

import pytest

from tamma_trio.engine.workflow_options import GitlabForgeOptions, parse_options
from tamma_trio.errors import ConfigError

SECRET = "glpat-THIS_MUST_NOT_SHOW_0123456789"


def gitlab(**forge: object) -> dict[str, object]:
    return {"forge": {"kind": "gitlab", "repositories": ["group/sub/project"], **forge}}


def test_defaults_and_subgroup_paths() -> None:
    forge = parse_options(gitlab(token=SECRET)).forge
    assert isinstance(forge, GitlabForgeOptions)
    assert forge.api_url == "https://gitlab.com/api/v4" and forge.merge_method == "merge"
    assert forge.required_approvals == 1 and forge.checks_grace == 120
    assert forge.command_access_level == 30 and forge.repositories == ("group/sub/project",)


@pytest.mark.parametrize(
    ("forge", "where", "problem"),
    [
        ({}, "engine.forge.token", "Field required"),
        ({"token": ""}, "engine.forge.token", "access token is required"),
        ({"token": SECRET, "merge_method": "rebase"}, "engine.forge.merge_method", "'squash'"),
        ({"token": SECRET, "command_access_level": 60}, "engine.forge.command_access_level", "50"),
        ({"token": SECRET, "repositories": ["solo"]}, "engine.forge.repositories.0", "full path"),
        ({"token": SECRET, "app_id": 3}, "engine.forge.app_id", "unknown key"),
    ],
)
def test_bad_gitlab_options_name_the_key_and_never_the_token(
    forge: dict[str, object], where: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(gitlab(**forge))
    problems = caught.value.problems
    assert any(path == where and problem in message for path, _, message in problems), problems
    assert SECRET not in repr(problems)
