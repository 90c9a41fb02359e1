"""Task types onto engine steps, against a MemoryStore and the fake engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tamma_trio.config import ServiceConfig
from tamma_trio.errors import EngineError
from tamma_trio.handlers import Handlers, target_of
from tamma_trio.models import NewTask, Outcome, Task
from tamma_trio.policy import Failure
from tamma_trio.step_records import Target
from tamma_trio.store.memory import MemoryStore
from tests.fake_engine import FakeEngine, FakeOptions

REPO = "acme/widgets"
ISSUE = {"repository": REPO, "issue": {"number": 7, "title": "Fix the widget"}}
PR = {"repository": REPO, "pull_request": {"number": 12}}
FULL_FLOW = [
    "select_issue",
    "analyze_issue",
    "generate_plan",
    "create_branch",
    "implement_code",
    "run_tests",
    "create_pull_request",
]


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore() as store:
        yield store


def make_handlers(
    store: MemoryStore, config: ServiceConfig | None = None, **options: Any
) -> tuple[Handlers, FakeEngine]:
    engine = FakeEngine(FakeOptions.model_validate(options))
    return Handlers(engine, store, config or ServiceConfig()), engine


async def claimed(store: MemoryStore, type_name: str, payload: dict[str, Any]) -> Task:
    await store.add(NewTask.build(type_name, payload))
    [task] = await store.claim(1)
    assert task.lease_token is not None
    return task


async def run(handlers: Handlers, task: Task) -> dict[str, Any]:
    assert task.lease_token is not None
    outcome = await handlers.run(task, task.lease_token)
    return outcome.as_result()


async def kinds(store: MemoryStore, task_id: int) -> list[str]:
    return [event.kind for event in await store.events(task_id)]


# --- issue_assigned ---------------------------------------------------------------------------


async def test_issue_assigned_runs_the_story_to_a_pull_request(store: MemoryStore) -> None:
    handlers, engine = make_handlers(store)
    task = await claimed(store, "issue_assigned", ISSUE)
    result = await run(handlers, task)
    assert result["action"] == "auto_approved"
    assert result["pull_request"]["number"] == 1007
    assert engine.steps() == FULL_FLOW
    stored = await store.get(task.id)
    assert sorted(stored.progress) == sorted(FULL_FLOW)
    approvals = [e.detail for e in await store.events(task.id) if e.kind == "approval"]
    assert [(a["stage"], a["approved"]) for a in approvals] == [("plan", True), ("diff", True)]
    assert {c["rule"] for c in approvals[0]["checks"]} >= {"complexity", "risk", "blocked_files"}


async def test_a_plan_that_needs_a_human_is_escalated_before_any_branch(
    store: MemoryStore,
) -> None:
    handlers, engine = make_handlers(store, complexity="high", files=["package.json"])
    task = await claimed(store, "issue_assigned", ISSUE)
    result = await run(handlers, task)
    assert result["action"] == "escalated_for_approval"
    assert result["stage"] == "plan"
    assert len(result["reasons"]) == 2
    assert engine.steps() == ["select_issue", "analyze_issue", "generate_plan", "escalate"]
    [(target, reason, details)] = engine.escalations
    assert target == Target(repository=REPO, number=7)
    assert "complexity high" in reason and "package.json" in reason
    assert details["approved"] is False
    [approval] = [e.detail for e in await store.events(task.id) if e.kind == "approval"]
    assert approval["reasons"] == result["reasons"]


async def test_a_diff_over_the_limits_is_escalated_before_the_tests(store: MemoryStore) -> None:
    handlers, engine = make_handlers(store, lines_added=5000)
    task = await claimed(store, "issue_assigned", ISSUE)
    result = await run(handlers, task)
    assert result["action"] == "escalated_for_approval"
    assert result["stage"] == "diff"
    assert result["branch"] == "tamma/7-fake"
    assert result["reasons"] == ["5002 lines changed (limit 1000)"]
    assert engine.steps() == [*FULL_FLOW[:5], "escalate"]


async def test_failing_tests_raise_a_final_error_and_open_no_pull_request(
    store: MemoryStore,
) -> None:
    handlers, engine = make_handlers(store, tests_pass=False)
    task = await claimed(store, "issue_assigned", ISSUE)
    with pytest.raises(EngineError) as caught:
        await run(handlers, task)
    assert caught.value.code == "tests_failed"
    assert caught.value.retryable is False
    assert caught.value.context["output_tail"] == "1 failed"
    assert "create_pull_request" not in engine.steps()
    # A failed test run is not stored: a retry by an operator runs the tests again.
    assert "run_tests" not in (await store.get(task.id)).progress


async def test_a_restarted_task_resumes_after_its_last_finished_step(store: MemoryStore) -> None:
    first, engine = make_handlers(store, failures={"run_tests": {"times": 1}})
    task = await claimed(store, "issue_assigned", ISSUE)
    with pytest.raises(EngineError):
        await run(first, task)
    assert engine.steps() == FULL_FLOW[:6]
    assert task.lease_token is not None
    await store.release(task.id, task.lease_token, "interrupted by shutdown")

    second, engine = make_handlers(store)
    [again] = await store.claim(1)
    result = await run(second, again)
    assert result["action"] == "auto_approved"
    assert engine.steps() == ["run_tests", "create_pull_request"]
    # The plan was approved before; only the diff is judged again.
    stages = [e.detail["stage"] for e in await store.events(task.id) if e.kind == "approval"]
    assert stages == ["plan", "diff", "diff"]


async def test_an_unreadable_stored_record_is_redone(store: MemoryStore) -> None:
    handlers, engine = make_handlers(store)
    task = await claimed(store, "issue_assigned", ISSUE)
    assert task.lease_token is not None
    await store.save_progress(task.id, task.lease_token, {"select_issue": {"bogus": True}})
    broken = await store.get(task.id)
    result = await run(handlers, broken)
    assert result["action"] == "auto_approved"
    assert engine.steps() == FULL_FLOW


# --- issue_comment ----------------------------------------------------------------------------


def comment(body: str, author: str = "alice") -> dict[str, Any]:
    return {"comment": {"body": body, "author": author}}


async def test_a_start_command_runs_the_issue_flow(store: MemoryStore) -> None:
    handlers, engine = make_handlers(store)
    task = await claimed(store, "issue_comment", {**ISSUE, **comment("/tamma start")})
    result = await run(handlers, task)
    assert result["action"] == "auto_approved"
    assert engine.steps() == FULL_FLOW


@pytest.mark.parametrize(
    ("body", "author", "reason"),
    [
        ("nice work", "alice", "no /tamma start or @tamma start command at the start of a line"),
        ("please /tamma start", "alice", "at the start of a line"),
        ("/tamma start", "tamma", "comment written by the bot itself"),
        ("/tamma start", "mallory", "mallory is not allowed to give commands"),
    ],
)
async def test_other_comments_are_ignored_without_the_engine(
    store: MemoryStore, body: str, author: str, reason: str
) -> None:
    config = ServiceConfig(command_authors=("alice",))
    handlers, engine = make_handlers(store, config)
    task = await claimed(store, "issue_comment", {**ISSUE, **comment(body, author)})
    assert task.lease_token is not None
    outcome = await handlers.run(task, task.lease_token)
    assert outcome.action == "ignored"
    assert reason in outcome.detail["reason"]
    await handlers.finish(task, outcome)
    assert engine.calls == []
    assert await kinds(store, task.id) == ["enqueued", "claimed"]


async def test_assignment_tasks_require_the_trigger_and_commands_do_not(
    store: MemoryStore,
) -> None:
    handlers, engine = make_handlers(store)
    await run(handlers, await claimed(store, "issue_assigned", ISSUE))
    other = {**ISSUE, "issue": {"number": 8, "title": "t"}, **comment("/tamma start")}
    await run(handlers, await claimed(store, "issue_comment", other))
    assert engine.required_triggers == [True, False]


async def test_a_stale_event_ends_as_ignored_without_escalation(store: MemoryStore) -> None:
    handlers, engine = make_handlers(
        store, failures={"select_issue": {"stale": True, "code": "issue_closed"}}
    )
    task = await claimed(store, "issue_assigned", ISSUE)
    assert task.lease_token is not None
    outcome = await handlers.run(task, task.lease_token)
    assert outcome.action == "ignored" and outcome.detail["code"] == "issue_closed"
    assert "closed" in outcome.detail["reason"]
    await handlers.finish(task, outcome)
    assert engine.steps() == ["select_issue"] and engine.escalations == []


# --- pull requests ----------------------------------------------------------------------------


async def test_a_ready_pull_request_is_merged_at_its_head(store: MemoryStore) -> None:
    handlers, engine = make_handlers(store)
    task = await claimed(store, "pr_review_requested", PR)
    result = await run(handlers, task)
    assert result == {"action": "merged", "pull_request": 12, "sha": "3" * 40}
    assert engine.calls == [
        ("monitor_pr", f"{REPO}#12"),
        ("merge_pr", f"{REPO}#12@2222222"),
    ]
    assert (await store.get(task.id)).progress == {}  # nothing stored between the two looks


@pytest.mark.parametrize(
    ("options", "reasons"),
    [
        ({"ci_state": "pending"}, ["CI is pending", "CI pending"]),
        ({"mergeable": None}, ["mergeability is still being computed"]),
        ({"mergeable": False}, ["not mergeable (conflicts)"]),
        ({"approvals": 0}, ["0/1 approvals"]),
        ({"merge_succeeds": False}, ["head moved"]),
    ],
)
async def test_a_pull_request_that_cannot_merge_yet_is_monitored(
    store: MemoryStore, options: dict[str, Any], reasons: list[str]
) -> None:
    handlers, _engine = make_handlers(store, **options)
    task = await claimed(store, "pr_review_requested", PR)
    result = await run(handlers, task)
    assert result["action"] == "monitoring"
    assert result["reasons"] == reasons


async def test_an_already_merged_pull_request_is_reported_as_merged(store: MemoryStore) -> None:
    handlers, engine = make_handlers(store, pr_state="merged")
    task = await claimed(store, "pr_review_requested", PR)
    result = await run(handlers, task)
    assert result == {"action": "merged", "pull_request": 12, "already_merged": True}
    assert engine.steps() == ["monitor_pr", "merge_pr"]  # merge_pr finishes an earlier cleanup


async def test_a_pull_request_merged_by_someone_else_is_still_merged(store: MemoryStore) -> None:
    handlers, _ = make_handlers(
        store,
        pr_state="merged",
        failures={"merge_pr": {"retryable": False, "code": "not_our_pull_request"}},
    )
    task = await claimed(store, "pr_review_requested", PR)
    result = await run(handlers, task)
    assert result == {"action": "merged", "pull_request": 12, "already_merged": True}


async def test_a_closed_pull_request_is_ignored(store: MemoryStore) -> None:
    handlers, engine = make_handlers(store, pr_state="closed")
    task = await claimed(store, "pr_review_requested", PR)
    result = await run(handlers, task)
    assert result["action"] == "ignored"
    assert engine.steps() == ["monitor_pr"]


async def test_lgtm_merges_and_dont_merge_does_not(store: MemoryStore) -> None:
    handlers, engine = make_handlers(store)
    no = await claimed(store, "pr_comment", {**PR, **comment("don't merge")})
    assert (await run(handlers, no))["action"] == "ignored"
    assert engine.calls == []
    await store.complete(no.id, no.lease_token or "", {})
    yes = await claimed(store, "pr_comment", {**PR, **comment("Reviewed.\nlgtm")})
    assert (await run(handlers, yes))["action"] == "merged"


# --- escalation and cleanup -------------------------------------------------------------------


async def test_escalate_tells_the_forge_why_the_task_failed(store: MemoryStore) -> None:
    handlers, engine = make_handlers(store)
    task = await claimed(store, "pr_review_requested", PR)
    await handlers.escalate(task, Failure("forge_down", "the forge is down", True))
    [(target, reason, details)] = engine.escalations
    assert target == Target(repository=REPO, number=12, kind="pull_request")
    assert reason == (
        f"task {task.id} (pr_review_requested) failed after 1 attempt(s): the forge is down"
    )
    assert details == {"task_id": task.id, "code": "forge_down", "error": "the forge is down"}


async def test_finish_frees_the_engine_workspace_only_after_success(store: MemoryStore) -> None:
    handlers, engine = make_handlers(store)
    task = await claimed(store, "issue_assigned", ISSUE)
    await handlers.finish(task, None)  # failed or cancelled: kept for a human
    await handlers.finish(task, Outcome(action="escalated_for_approval"))
    assert engine.calls == []
    await handlers.finish(task, Outcome(action="auto_approved"))
    assert engine.calls == [("finish", f"{REPO}#7")]


def test_target_of_issue_and_pull_request_tasks() -> None:
    issue_task = NewTask.build("issue_comment", {**ISSUE, **comment("x")})
    pr_task = NewTask.build("pr_comment", {**PR, **comment("x")})
    common: dict[str, Any] = {
        "id": 1,
        "priority": 1,
        "status": "queued",
        "not_before": "2024-01-01T00:00:00Z",
        "created_at": "2024-01-01T00:00:00Z",
    }
    for new, number, kind in ((issue_task, 7, "issue"), (pr_task, 12, "pull_request")):
        task = Task.model_validate(
            {**common, "type": new.type, "payload": new.payload, "subject": new.subject}
        )
        assert target_of(task) == Target(repository=REPO, number=number, kind=kind)


async def test_a_transient_error_finishing_a_merge_is_retried(store: MemoryStore) -> None:
    handlers, _ = make_handlers(store, pr_state="merged", failures={"merge_pr": {"times": 1}})
    task = await claimed(store, "pr_review_requested", PR)
    with pytest.raises(EngineError):
        await run(handlers, task)
