"""The workflow engine driven directly through the Engine API (no daemon): real git, a real
bare origin, the local forge in SQLite, real agent subprocesses from tests/agents."""

from __future__ import annotations

from pathlib import Path

import pytest

from tamma_trio.engine.workflow import AUTOMATED, IN_PROGRESS, NEEDS_HUMAN, WorkflowEngine
from tamma_trio.errors import EngineError
from tamma_trio.log import Redactor
from tamma_trio.models import NewTask, TaskType
from tamma_trio.step_records import Target
from tests.workflow_helpers import (
    BOT,
    REPO,
    add_issue,
    agent_argv,
    forge_db,
    git_out,
    make_engine,
)

APPEND = agent_argv("append_line.py", "{prompt_file}")


async def run_to_pull_request(engine: WorkflowEngine, number: int):  # type: ignore[no-untyped-def]
    issue = await engine.select_issue(REPO, number)
    analysis = await engine.analyze_issue(issue)
    plan = await engine.generate_plan(analysis)
    branch = await engine.create_branch(plan)
    changes = await engine.implement_code(plan, branch)
    tests = await engine.run_tests(changes)
    pr = await engine.create_pull_request(changes, plan, tests)
    return issue, plan, changes, tests, pr


async def test_issue_becomes_a_merge_commit_on_origin_main(tmp_path: Path) -> None:
    enqueued: list[NewTask] = []

    async def enqueue(task: NewTask) -> None:
        enqueued.append(task)

    engine, database = make_engine(tmp_path, APPEND, enqueue=enqueue)
    number = add_issue(database, "Note the release", "Say so in CHANGES.txt", ("complexity:low",))
    async with engine:
        issue, plan, changes, tests, pr = await run_to_pull_request(engine, number)
        status = await engine.monitor_pr(REPO, pr.number)
        result = await engine.merge_pr(REPO, pr.number, status.head_sha)
        await engine.finish(issue.target)

    assert plan.complexity == "low" and tests.passed
    assert changes.branch.name == f"tamma/{number}-note-the-release"
    assert [(f.path, f.status, f.added) for f in changes.files] == [("CHANGES.txt", "A", 1)]
    assert pr.number == number + 1  # issues and pull requests share one sequence
    assert [t.type for t in enqueued] == [TaskType.PR_REVIEW_REQUESTED]
    assert enqueued[0].payload["pull_request"]["number"] == pr.number
    assert status.ci_state == "success" and status.mergeable and status.ready_to_merge
    assert result.merged and result.sha

    origin = tmp_path / "origin.git"
    assert git_out(origin, "rev-parse", "main") == result.sha
    parents = git_out(origin, "log", "-1", "--format=%P", "main").split()
    assert parents[1] == changes.head_sha  # a real merge commit of the branch head
    assert git_out(origin, "show", "main:CHANGES.txt") == f"#{number}: Note the release"
    assert git_out(origin, "log", "-1", "--format=%ae", changes.head_sha) == "tamma-bot@localhost"
    assert git_out(origin, "branch", "--list", changes.branch.name) == ""  # deleted after merge
    assert not Path(changes.branch.workdir).exists()

    db = forge_db(database)
    try:
        issue_row, pr_row = db.item(REPO, number), db.item(REPO, pr.number)
        comments = [c.body for c in db.comments(REPO, number)]
    finally:
        db.close()
    assert issue_row is not None and issue_row.state == "closed"
    assert BOT in issue_row.assignees and IN_PROGRESS not in issue_row.labels
    assert pr_row is not None and pr_row.state == "merged" and AUTOMATED in pr_row.labels
    assert f"Closes #{number}" in pr_row.body
    assert len(comments) == 3  # claim, pull request opened, merged
    assert "working on this issue" in comments[0] and f"#{pr.number}" in comments[1]


async def test_every_side_effect_step_is_idempotent(tmp_path: Path) -> None:
    engine, database = make_engine(tmp_path, APPEND)
    number = add_issue(database, "Twice", labels=("complexity:low",))
    async with engine:
        _, plan, changes, tests, pr = await run_to_pull_request(engine, number)
        # A resumed task repeats each step; none may repeat its side effect.
        again = await engine.select_issue(REPO, number)
        branch = await engine.create_branch(plan)
        changes_again = await engine.implement_code(plan, branch)
        pr_again = await engine.create_pull_request(changes_again, plan, tests)
    assert IN_PROGRESS in again.labels
    assert branch.name == changes.branch.name
    assert changes_again.head_sha == changes.head_sha and changes_again.agent is None
    assert pr_again.number == pr.number
    db = forge_db(database)
    try:
        assert len(db.comments(REPO, number)) == 2  # one claim, one "pull request opened"
        assert [row.number for row in db.items(REPO, "pull")] == [pr.number]
    finally:
        db.close()
    log = git_out(tmp_path / "origin.git", "log", "--format=%s", f"refs/heads/{branch.name}")
    assert log.splitlines() == ["Twice (#1)", "Initial commit"]


async def test_merge_refuses_a_stale_head_sha(tmp_path: Path) -> None:
    engine, database = make_engine(tmp_path, APPEND)
    number = add_issue(database, "Stale", labels=("complexity:low",))
    async with engine:
        *_, pr = await run_to_pull_request(engine, number)
        status = await engine.monitor_pr(REPO, pr.number)
        stale = await engine.merge_pr(REPO, pr.number, "0" * 40)
        main_before = git_out(tmp_path / "origin.git", "rev-parse", "main")
        fresh = await engine.merge_pr(REPO, pr.number, status.head_sha)
    assert not stale.merged and "head moved" in stale.message
    assert main_before == git_out(tmp_path / "origin.git", "rev-parse", "main~1")
    assert fresh.merged


@pytest.mark.parametrize(
    ("labels", "state", "code"),
    [
        ((NEEDS_HUMAN,), "open", "needs_human"),
        ((), "closed", "issue_closed"),
    ],
)
async def test_select_refuses_issues_that_are_not_ours_to_take(
    tmp_path: Path, labels: tuple[str, ...], state: str, code: str
) -> None:
    engine, database = make_engine(tmp_path, APPEND)
    number = add_issue(database, "Not for us", labels=labels)
    db = forge_db(database)
    db.set_state(REPO, number, state)
    async with engine:
        with pytest.raises(EngineError) as caught:
            await engine.select_issue(REPO, number)
    assert caught.value.code == code and caught.value.retryable is False
    assert db.comments(REPO, number) == []  # no claim comment
    row = db.item(REPO, number)
    db.close()
    assert row is not None and row.assignees == () and IN_PROGRESS not in row.labels


async def test_escalate_comments_labels_and_releases_the_issue(tmp_path: Path) -> None:
    engine, database = make_engine(tmp_path, APPEND)
    number = add_issue(database, "Hard one")
    async with engine:
        await engine.select_issue(REPO, number)
        target = Target(repository=REPO, number=number)
        for _ in range(2):  # a retried escalation does not comment twice
            await engine.escalate(target, "tests failed", {"exit_code": 1, "output": "E\nF"})
    db = forge_db(database)
    row, comments = db.item(REPO, number), db.comments(REPO, number)
    db.close()
    assert row is not None and NEEDS_HUMAN in row.labels and IN_PROGRESS not in row.labels
    assert len(comments) == 2 and "Reason: tests failed" in comments[1].body
    assert "- exit_code: 1" in comments[1].body and "```\nE\nF\n```" in comments[1].body


async def test_agent_that_changes_nothing_fails_and_commits_nothing(tmp_path: Path) -> None:
    engine, database = make_engine(tmp_path, agent_argv("no_change.py", "{prompt_file}"))
    number = add_issue(database, "Nothing to do", labels=("complexity:low",))
    async with engine:
        issue = await engine.select_issue(REPO, number)
        plan = await engine.generate_plan(await engine.analyze_issue(issue))
        branch = await engine.create_branch(plan)
        with pytest.raises(EngineError) as caught:
            await engine.implement_code(plan, branch)
    assert str(caught.value) == "agent produced no changes"
    assert caught.value.code == "no_changes" and not caught.value.retryable
    assert git_out(Path(branch.workdir), "rev-parse", "HEAD") == branch.base_sha


async def test_leftovers_of_an_interrupted_agent_run_are_discarded(tmp_path: Path) -> None:
    engine, database = make_engine(tmp_path, APPEND)
    number = add_issue(database, "Leftovers", labels=("complexity:low",))
    async with engine:
        issue = await engine.select_issue(REPO, number)
        plan = await engine.generate_plan(await engine.analyze_issue(issue))
        branch = await engine.create_branch(plan)
        (Path(branch.workdir) / "half-written.txt").write_text("partial\n")
        (Path(branch.workdir) / "README.md").write_text("clobbered\n")
        changes = await engine.implement_code(plan, branch)
    assert [f.path for f in changes.files] == ["CHANGES.txt"]
    assert changes.agent is not None and changes.agent.exit_code == 0


async def test_structured_agent_answers_drive_analysis_and_plan(tmp_path: Path) -> None:
    engine, database = make_engine(tmp_path, agent_argv("structured.py"), structured=True)
    number = add_issue(database, "Write notes", "x" * 5000)
    async with engine:
        issue = await engine.select_issue(REPO, number)
        analysis = await engine.analyze_issue(issue)
        plan = await engine.generate_plan(analysis)
        branch = await engine.create_branch(plan)
        changes = await engine.implement_code(plan, branch)
    assert (analysis.complexity, analysis.risk_level, analysis.source) == ("medium", "low", "agent")
    assert analysis.summary == "Agent says: small."
    assert [(f.path, f.action) for f in plan.files] == [("docs/notes.md", "create")]
    assert plan.estimated_hours == 0.5
    assert [f.path for f in changes.files] == ["docs/notes.md"]
    worktrees = tmp_path / "workspaces" / "acme__demo" / "worktrees"
    assert sorted(p.name for p in worktrees.iterdir()) == [str(number)]  # scratch removed


async def test_tests_that_fail_block_the_pull_request(tmp_path: Path) -> None:
    engine, database = make_engine(tmp_path, agent_argv("break_tests.py"))
    number = add_issue(database, "Break it", labels=("complexity:low",))
    async with engine:
        issue = await engine.select_issue(REPO, number)
        plan = await engine.generate_plan(await engine.analyze_issue(issue))
        changes = await engine.implement_code(plan, await engine.create_branch(plan))
        tests = await engine.run_tests(changes)
        with pytest.raises(EngineError) as caught:
            await engine.create_pull_request(changes, plan, tests)
    assert not tests.passed and tests.exit_code == 1 and "FAILED" in tests.output_tail
    assert caught.value.code == "tests_failed" and not caught.value.retryable
    assert git_out(tmp_path / "origin.git", "branch", "--list", changes.branch.name) == ""
    db = forge_db(database)
    assert db.items(REPO, "pull") == []
    db.close()


async def test_repositories_other_than_the_configured_one_are_refused(tmp_path: Path) -> None:
    engine, _ = make_engine(tmp_path, APPEND)
    async with engine:
        with pytest.raises(EngineError) as caught:
            await engine.select_issue("someone/else", 1)
    assert caught.value.code == "unknown_repository" and not caught.value.retryable


async def escalation_comment(tmp_path: Path, output: str, redactor: Redactor | None = None) -> str:
    """The comment an escalation quoting ``output`` leaves on a new issue."""
    engine, database = make_engine(tmp_path, APPEND, redactor=redactor)
    number = add_issue(database, "Leaky")
    async with engine:
        target = Target(repository=REPO, number=number)
        await engine.escalate(target, "tests failed", {"output_tail": output})
    db = forge_db(database)
    (comment,) = db.comments(REPO, number)
    db.close()
    return comment.body


async def test_escalation_comment_masks_secret_looking_output(tmp_path: Path) -> None:
    output = "Traceback...\nAuthorization: Bearer ghp_abcdefghijklmnopqrstuvwxyz0123456789\n"
    body = await escalation_comment(tmp_path, output)
    assert "ghp_abcdefghijklmnopqrstuvwxyz0123456789" not in body
    assert "Traceback" in body


async def test_escalation_comment_masks_the_secrets_of_the_redactor_passed_in(
    tmp_path: Path,
) -> None:
    redactor = Redactor()
    redactor.register("plain-words-no-pattern-finds")
    output = "the agent echoed plain-words-no-pattern-finds\n"
    body = await escalation_comment(tmp_path, output, redactor)
    assert "plain-words-no-pattern-finds" not in body
    assert "the agent echoed" in body
