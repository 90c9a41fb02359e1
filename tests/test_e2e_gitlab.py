"""End to end on the GitLab forge: a real `tamma-trio serve` process, GitLab webhooks over HTTP on
loopback, and the fake GitLab (in this test process) serving a local bare repository as the
project's http_url_to_repo. The project sits in a subgroup; the token reaches the daemon only
through TAMMA_ENGINE__FORGE__TOKEN and never appears in its log."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import httpx

from tamma_trio.models import Task, TaskType
from tests import webhook_payloads as gl
from tests.fake_gitlab import FakeGitLab, serving
from tests.gitlab_helpers import BOT, PROJECT, TOKEN, fake_with_project
from tests.test_e2e_workflow import Daemon, all_tasks, finished, toml_value, until
from tests.workflow_helpers import EXAMPLE_AGENT, UNITTEST, git_out

HOOK_TOKEN = "e2e-gitlab-hook-token-0123456789"


def write_config(tmp_path: Path, fake: FakeGitLab) -> Path:
    sections: dict[str, dict[str, Any]] = {
        "service": {
            "poll_interval": 0.2,
            "retry_delay": 0.1,
            "max_retry_delay": 1,
            "bot_name": BOT,
        },
        "service.queue.sqlite": {"path": str(tmp_path / "tamma.db"), "synchronous": "NORMAL"},
        "service.health_check": {"port": 0},
        "service.metrics": {"port": 0},
        "webhooks.gitlab": {"tokens": [HOOK_TOKEN]},
        "engine": {"name": "workflow", "workspace_dir": str(tmp_path / "workspaces")},
        "engine.forge": {
            "kind": "gitlab",
            "api_url": fake.api_url,
            "repositories": [PROJECT],
            "checks_grace": 0,
        },
        "engine.agent": {
            "command": [sys.executable, str(EXAMPLE_AGENT), "{prompt_file}"],
            "timeout": 30,
        },
        "engine.tests": {"command": list(UNITTEST), "timeout": 60},
    }
    text = "".join(
        f"[{name}]\n" + "".join(f"{key} = {toml_value(v)}\n" for key, v in table.items()) + "\n"
        for name, table in sections.items()
    )
    path = tmp_path / "tamma.toml"
    path.write_text(text)
    return path


async def deliver(daemon: Daemon, event: str, payload: Any, key: str) -> httpx.Response:
    found = re.search(r"listening health=(\S+)", daemon.log.read_text())
    assert found is not None, daemon.log.read_text()
    headers = gl.gitlab_headers(event, token=HOOK_TOKEN, key=key)
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{found.group(1)}/webhooks/gitlab", content=gl.encode(payload), headers=headers
        )


def in_project(hook: dict[str, Any]) -> dict[str, Any]:
    return {**hook, "project": gl.gl_project(PROJECT), "user": gl.gl_user("alice")}


def reviews(tmp_path: Path, action: str) -> Any:
    async def check() -> Task | None:
        for task in await all_tasks(tmp_path):
            if (
                task.type is TaskType.PR_REVIEW_REQUESTED
                and (task.result or {}).get("action") == action
            ):
                return task
        return None

    return check


async def test_an_assigned_gitlab_issue_ends_as_a_merged_merge_request(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    project = fake.projects[PROJECT]
    iid = fake.add_issue(PROJECT, "Add a farewell", labels=("complexity:low",), assignees=(BOT,))
    async with serving(fake):
        config = write_config(tmp_path, fake)
        daemon = Daemon(tmp_path, config, env={"TAMMA_ENGINE__FORGE__TOKEN": TOKEN})
        await daemon.start()
        try:
            assigned = gl.gl_issue_hook(assignees=([], [BOT]), iid=iid)
            assigned["object_attributes"]["title"] = "Add a farewell"
            accepted = await deliver(daemon, "Issue Hook", in_project(assigned), "e2e-1")
            assert accepted.status_code == 202, accepted.text
            opened = await until(finished(tmp_path, TaskType.ISSUE_ASSIGNED), "the merge request")
            assert opened.result is not None and opened.result["action"] == "auto_approved", (
                opened.error
            )
            number = opened.result["pull_request"]["number"]
            mr = project.merge_requests[number]
            project.pipelines[mr["sha"]] = ["success"]
            pipeline = gl.gl_pipeline_hook("success", iid=number, ref=mr["source_branch"])
            green = await deliver(daemon, "Pipeline Hook", in_project(pipeline), "e2e-2")
            assert green.status_code == 202, green.text
            waiting = await until(reviews(tmp_path, "monitoring"), "the first look at the MR")
            project.approvals[number] = ["alice"]
            approved = gl.gl_merge_request_hook(None, action="approved", iid=number)
            approved["object_attributes"]["source_branch"] = mr["source_branch"]
            again = await deliver(daemon, "Merge Request Hook", in_project(approved), "e2e-3")
            assert again.status_code == 202, again.text
            merged = await until(reviews(tmp_path, "merged"), "the merge")
        finally:
            assert await daemon.stop() == 0, daemon.log.read_text()
    assert waiting.result is not None
    assert "0 of 1 required approvals" in waiting.result["reasons"], waiting.result
    assert merged.result is not None and merged.subject == f"{PROJECT}#!{number}"
    assert git_out(project.bare, "rev-parse", "main") == merged.result["sha"]
    assert f"#{iid}: Add a farewell" in git_out(project.bare, "show", "main:CHANGELOG.md")
    assert mr["state"] == "merged" and project.issues[iid]["state"] == "closed"
    assert git_out(project.bare, "branch", "--list", mr["source_branch"]) == ""
    said = [n["body"] for n in project.notes[iid]]  # on the issue: !N, never #N (an issue)
    assert any(f"Opened merge request !{number}: {mr['web_url']}" in body for body in said), said
    assert any(f"Merge request !{number} was merged" in body for body in said), said
    assert not any(f"#{number}" in body for body in said if "request" in body), said
    message = git_out(project.bare, "log", "-1", "--format=%B", "main")
    assert message.startswith(f"Merge branch '{mr['source_branch']}' into 'main'"), message
    assert f"See merge request !{number}: {mr['web_url']}" in message
    log = "".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
    assert TOKEN not in log and HOOK_TOKEN not in log
    assert fake.git_auth and all(h.startswith("Basic ") for h in fake.git_auth)
    assert (tmp_path / "workspaces" / "acme+tools+demo" / "repo").is_dir()
