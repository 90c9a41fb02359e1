"""GitLab full paths (subgroups) are accepted where the forge is GitLab, GitHub's owner/name rule
stays where it is not, and no accepted name can escape or share a workspace directory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tamma_trio.cli import main
from tamma_trio.config import GitlabWebhookConfig, ServiceConfig, WebhooksConfig
from tamma_trio.errors import FieldError
from tamma_trio.intake.requests import new_task_from
from tamma_trio.models import NewTask
from tamma_trio.repositories import check_any, check_gitlab, workspace_dirname
from tamma_trio.web import create_app
from tests import webhook_payloads as gl
from tests.web_fixtures import LOOPBACK, OpenMemoryStore, make_deps

SUBGROUP = "acme/tools/demo"

GITLAB_GOOD = [
    "group/project",
    SUBGROUP,
    "g_1/sub.group/my-project",
    "_private/x",
    "a/b__c",
    "/".join(f"s{n}" for n in range(22)),  # a group, 20 subgroups and the project
]
GITLAB_BAD = [
    "solo",
    "a//b",
    "a/./b",
    "a/../b",
    "../a",
    "a/..",
    "/a/b",
    "a/b/",
    "a/b.git",
    "a/b.atom",
    "a/b.",
    "-a/b",
    "a/.b",
    "a/b c",
    "a\\b/c",
    "a/b\n",
    "ö/x",
    "a/" + "b" * 256,
    "/".join(f"s{n}" for n in range(23)),
]


@pytest.mark.parametrize("path", GITLAB_GOOD)
def test_gitlab_full_paths_are_accepted(path: str) -> None:
    assert check_gitlab(path) == path and check_any(path) == path


@pytest.mark.parametrize("path", GITLAB_BAD)
def test_paths_gitlab_refuses_name_the_rule(path: str) -> None:
    with pytest.raises(ValueError, match="GitLab full path"):
        check_gitlab(path)


GITHUB_ONLY = ("a/.b", "a/b.", "a/b.git", "a/b.atom", "-a/b")  # GitHub allows these


@pytest.mark.parametrize("path", [p for p in GITLAB_BAD if p not in GITHUB_ONLY])
def test_no_forge_accepts_them_in_a_payload(path: str) -> None:
    with pytest.raises(ValueError, match="owner/name"):
        check_any(path)


def test_workspace_directories_are_distinct_and_never_paths() -> None:
    names = ["o/r", "a/b__c", "a__b/c", "a/b/c", "a__b__c/d", "a/b/c/d", "a+b/c", "x/.github"]
    dirs = [workspace_dirname(name) for name in names]
    assert len(set(dirs)) == len(names), dirs
    assert all("/" not in d and d not in ("", ".", "..") for d in dirs)
    assert workspace_dirname("o/r") == "o__r"  # where clones were before subgroups existed
    assert workspace_dirname(SUBGROUP) == "acme+tools+demo"
    with pytest.raises(ValueError, match="cannot name a directory"):
        workspace_dirname("a/../b")


def request(repository: str) -> dict[str, Any]:
    return {"type": "issue_assigned", "payload": {"repository": repository, "issue": {"number": 1}}}


def test_requests_follow_the_configured_forges_rule() -> None:
    new = new_task_from(request(SUBGROUP), default_retries=3, actor="api", forge_kind="gitlab")
    assert new.payload["repository"] == SUBGROUP and new.subject == f"{SUBGROUP}#1"
    for kind in ("github", "local"):
        with pytest.raises(FieldError, match="repository: must be owner/name") as refused:
            new_task_from(request(SUBGROUP), default_retries=3, actor="api", forge_kind=kind)
        assert refused.value.field == "payload"
    with pytest.raises(FieldError, match="GitLab full path"):
        new_task_from(request("acme/../x"), default_retries=3, actor="api", forge_kind="gitlab")


@pytest.mark.parametrize(
    ("forge_kind", "repository", "status"),
    [("gitlab", SUBGROUP, 201), ("github", SUBGROUP, 400), ("gitlab", "acme/./x", 400)],
)
async def test_the_api_takes_subgroups_only_on_gitlab(
    memory_store: OpenMemoryStore,
    autojump_clock: Any,
    forge_kind: str,
    repository: str,
    status: int,
) -> None:
    deps, _ = make_deps(await memory_store())
    deps = dataclasses.replace(deps, forge_kind=forge_kind)
    client = create_app(deps).test_client()
    response = await client.post("/api/tasks", json=request(repository), scope_base=LOOPBACK)
    body = await response.get_json()
    assert response.status_code == status, body
    stored = await deps.store.list_tasks(limit=10)
    if status == 400:
        assert body["error"] == "invalid_field" and "repository" in body["detail"]
        assert stored == []
    else:
        assert [t.subject for t in stored] == [f"{SUBGROUP}#1"]


def gitlab_config(tmp_path: Path) -> Path:
    path = tmp_path / "tamma.toml"
    path.write_text(
        f'[service.queue.sqlite]\npath = "{tmp_path / "tamma.db"}"\n\n'
        '[engine.forge]\nkind = "gitlab"\nrepositories = ["acme/tools/demo"]\n'
        'token = "glpat-unused"\n'
    )
    return path


@pytest.mark.parametrize(("repository", "code"), [(SUBGROUP, 0), ("acme/tools/demo.git", 2)])
def test_the_cli_takes_gitlab_paths_with_a_gitlab_forge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], repository: str, code: int
) -> None:
    config = str(gitlab_config(tmp_path))
    payload = json.dumps(request(repository)["payload"])
    argv = ["tasks", "add", "issue_assigned", "--payload", payload, "--config", config]
    assert main(argv) == code
    err = capsys.readouterr().err
    if code == 2:
        assert "repository" in err and "GitLab full path" in err
        assert not (tmp_path / "tamma.db").exists()  # refused before any store was opened


async def test_a_gitlab_hook_from_a_subgroup_project_becomes_a_task(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    deps, _ = make_deps(await memory_store(), config=ServiceConfig(bot_name=gl.BOT))
    hooks = WebhooksConfig(gitlab=GitlabWebhookConfig.model_validate({"tokens": [gl.TOKEN]}))
    deps = dataclasses.replace(deps, webhooks=hooks, served=frozenset({SUBGROUP}))
    client = create_app(deps).test_client()
    payload = {**gl.gl_issue_hook(assignees=([], [gl.BOT])), "project": gl.gl_project(SUBGROUP)}
    response = await client.post(
        "/webhooks/gitlab", data=gl.encode(payload), headers=gl.gitlab_headers("Issue Hook")
    )
    assert response.status_code == 202, await response.get_json()
    [task] = await deps.store.list_tasks(limit=10)
    assert task.subject == f"{SUBGROUP}#23" and task.payload["repository"] == SUBGROUP


def test_a_stored_payload_may_hold_either_forges_name() -> None:
    for repository in ("octo/hello.world", SUBGROUP):
        payload = {"repository": repository, "pull_request": {"number": 2}}
        assert NewTask.build("pr_review_requested", payload).subject == f"{repository}#!2"
