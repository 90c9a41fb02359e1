"""The workflow engine on the GitLab forge against the fake GitLab on loopback: an issue becomes
a merged merge request, the clone and push authenticate through the environment only."""

from __future__ import annotations

import sys
from pathlib import Path

from tamma_trio.engine.base import EngineContext
from tamma_trio.engine.workflow import IN_PROGRESS, WorkflowEngine, create_engine
from tests.fake_gitlab import FakeGitLab, serving
from tests.gitlab_helpers import BOT, PROJECT, TOKEN, fake_with_project, gitlab_engine_options
from tests.workflow_helpers import agent_argv, git_out

APPEND = agent_argv("append_line.py", "{prompt_file}")


def engine_for(tmp_path: Path, fake: FakeGitLab, **forge: object) -> WorkflowEngine:
    options = gitlab_engine_options(tmp_path, fake, APPEND, **forge)
    options["tests"]["command"] = [sys.executable, "-m", "unittest", "-q"]
    return create_engine(options, EngineContext(bot_name=BOT, database_path=None))


async def test_issue_becomes_a_merged_merge_request_on_gitlab(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    project = fake.projects[PROJECT]
    iid = fake.add_issue(PROJECT, "Note the release", "Say so.", labels=("complexity:low",))
    async with serving(fake):
        engine = engine_for(tmp_path, fake)
        async with engine:
            issue = await engine.select_issue(PROJECT, iid)
            plan = await engine.generate_plan(await engine.analyze_issue(issue))
            branch = await engine.create_branch(plan)
            changes = await engine.implement_code(plan, branch)
            tests = await engine.run_tests(changes)
            mr = await engine.create_pull_request(changes, plan, tests)
            project.pipelines[mr.head_sha] = ["running"]
            waiting = await engine.monitor_pr(PROJECT, mr.number)
            project.pipelines[mr.head_sha] = ["success"]
            project.approvals[mr.number] = ["alice"]
            ready = await engine.monitor_pr(PROJECT, mr.number)
            result = await engine.merge_pr(PROJECT, mr.number, ready.head_sha)
            await engine.finish(issue.target)

    assert issue.assignees == (BOT,) and IN_PROGRESS in issue.labels
    assert not waiting.ready_to_merge and waiting.ci_state == "pending"
    assert "0 of 1 required approvals" in waiting.reasons
    assert ready.ready_to_merge and ready.ci_state == "success"
    assert result.merged and result.sha
    assert git_out(project.bare, "rev-parse", "main") == result.sha
    assert git_out(project.bare, "log", "-1", "--format=%P", "main").split()[1] == changes.head_sha
    assert git_out(project.bare, "branch", "--list", branch.name) == ""  # source branch removed
    item = project.issues[iid]
    assert item["state"] == "closed" and IN_PROGRESS not in item["labels"]
    merge_request = project.merge_requests[mr.number]
    assert f"Closes #{iid}" in merge_request["description"]
    assert "tamma-automated" in merge_request["labels"] and "tamma-automated" in project.labels
    assert any(f"merge request !{mr.number}: {mr.url}" in n["body"] for n in project.notes[iid])
    assert mr.name == f"merge request !{mr.number}"
    assert fake.git_auth and all(h.startswith("Basic ") for h in fake.git_auth)
    clone = tmp_path / "workspaces" / "acme+tools+demo" / "repo"  # a subgroup: + joins
    config = (clone / ".git" / "config").read_text()
    assert TOKEN not in config and f"{fake.base_url}/git/{PROJECT}.git" in config
