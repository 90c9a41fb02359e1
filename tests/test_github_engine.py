"""The workflow engine on the GitHub forge against the fake GitHub on loopback: an issue becomes
a merged pull request, the clone and push authenticate through the environment only, and two
repositories get two clones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tamma_trio.engine.base import EngineContext
from tamma_trio.engine.workflow import IN_PROGRESS, WorkflowEngine, create_engine
from tamma_trio.errors import EngineError, StaleEventError
from tests.fake_github import FakeGitHub, serving
from tests.github_helpers import BOT, REPO, TOKEN, fake_with_repo, github_engine_options
from tests.workflow_helpers import agent_argv, git_out

APPEND = agent_argv("append_line.py", "{prompt_file}")


def engine_for(tmp_path: Path, fake: FakeGitHub, **forge: object) -> WorkflowEngine:
    options = github_engine_options(tmp_path, fake, APPEND, **forge)
    options["tests"]["command"] = [sys.executable, "-m", "unittest", "-q"]
    return create_engine(options, EngineContext(bot_name=BOT, database_path=None))


async def test_issue_becomes_a_merged_pull_request_on_github(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    repo = fake.repos[REPO]
    number = fake.add_issue(REPO, "Note the release", "Say so.", labels=("complexity:low",))
    async with serving(fake):
        engine = engine_for(tmp_path, fake)
        async with engine:
            issue = await engine.select_issue(REPO, number)
            plan = await engine.generate_plan(await engine.analyze_issue(issue))
            branch = await engine.create_branch(plan)
            changes = await engine.implement_code(plan, branch)
            tests = await engine.run_tests(changes)
            pr = await engine.create_pull_request(changes, plan, tests)
            waiting = await engine.monitor_pr(REPO, pr.number)
            repo.check_runs[pr.head_sha] = [
                {"name": "ci", "status": "completed", "conclusion": "success"}
            ]
            repo.reviews[pr.number] = [{"user": {"login": "alice"}, "state": "APPROVED"}]
            ready = await engine.monitor_pr(REPO, pr.number)
            result = await engine.merge_pr(REPO, pr.number, ready.head_sha)
            await engine.finish(issue.target)

    assert issue.assignees == (BOT,) and IN_PROGRESS in issue.labels
    assert not waiting.ready_to_merge and "0 of 1 required approvals" in waiting.reasons
    assert ready.ready_to_merge and ready.ci_state == "success"
    assert result.merged and result.sha
    assert git_out(repo.bare, "rev-parse", "main") == result.sha
    assert git_out(repo.bare, "log", "-1", "--format=%P", "main").split()[1] == changes.head_sha
    assert git_out(repo.bare, "branch", "--list", branch.name) == ""  # deleted after merge
    item = repo.items[number]
    assert item["state"] == "closed" and item["state_reason"] == "completed"
    assert IN_PROGRESS not in [label["name"] for label in item["labels"]]
    pull = repo.items[pr.number]
    assert f"Closes #{number}" in pull["body"] and pull["labels"][0]["name"] == "tamma-automated"
    bodies = [c["body"] for c in repo.comments[number]]
    assert any(f"#{pr.number}" in body for body in bodies)
    # git met the fake's Basic auth on every request, and the token is nowhere on disk.
    assert fake.git_auth and all(h.startswith("Basic ") for h in fake.git_auth)
    clone = tmp_path / "workspaces" / "acme__demo" / "repo"
    config = (clone / ".git" / "config").read_text()
    assert TOKEN not in config and f"{fake.base_url}/git/{REPO}.git" in config


async def test_git_without_the_header_is_refused_by_the_fake(tmp_path: Path) -> None:
    """The fake really checks git's credentials: a clone without the token is refused."""
    fake = fake_with_repo(tmp_path)
    async with serving(fake):
        import trio

        done = await trio.run_process(
            ["git", "clone", "-q", f"{fake.base_url}/git/{REPO}.git", str(tmp_path / "anon")],
            env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin"},
            check=False,
            capture_stderr=True,
        )
    assert done.returncode != 0 and fake.git_auth[0] == ""


async def test_two_repositories_get_two_clones_and_others_are_refused(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path, REPO, "acme/other")
    first = fake.add_issue(REPO, "One")
    second = fake.add_issue("acme/other", "Two")
    async with serving(fake):
        engine = engine_for(tmp_path, fake, repositories=[REPO, "acme/other"])
        async with engine:
            one = await engine.create_branch(
                await engine.generate_plan(
                    await engine.analyze_issue(await engine.select_issue(REPO, first))
                )
            )
            two = await engine.create_branch(
                await engine.generate_plan(
                    await engine.analyze_issue(await engine.select_issue("acme/other", second))
                )
            )
            with pytest.raises(EngineError) as refused:
                await engine.select_issue("acme/stranger", 1)
    assert Path(one.workdir).parent.parent == tmp_path / "workspaces" / "acme__demo"
    assert Path(two.workdir).parent.parent == tmp_path / "workspaces" / "acme__other"
    assert refused.value.code == "unknown_repository" and not refused.value.retryable
    assert not any("stranger" in path for _, path, _ in fake.log)


async def test_a_stale_event_is_recognised_before_anything_is_touched(tmp_path: Path) -> None:
    fake = fake_with_repo(tmp_path)
    closed = fake.add_issue(REPO, "Closed", labels=("tamma",))
    fake.repos[REPO].items[closed]["state"] = "closed"
    elsewhere = fake.add_issue(REPO, "Taken", labels=("tamma",), assignees=("carol",))
    untriggered = fake.add_issue(REPO, "Not asked")
    async with serving(fake):
        codes = []
        async with engine_for(tmp_path, fake) as engine:
            for number in (closed, elsewhere, untriggered):
                with pytest.raises(StaleEventError) as caught:
                    await engine.select_issue(REPO, number, require_trigger=True)
                codes.append(caught.value.code)
            by_command = await engine.select_issue(REPO, untriggered)  # a /tamma start comment
    assert codes == ["issue_closed", "assigned_elsewhere", "not_triggered"]
    assert by_command.assignees == (BOT,)
    for number in (closed, elsewhere):
        assert fake.repos[REPO].comments.get(number, []) == []  # nothing was touched
