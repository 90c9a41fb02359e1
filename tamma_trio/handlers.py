"""Task types onto engine steps: the four task flows, each ending in one of the result actions.

Each step the engine runs starts with a ``step`` event (timeline.py reads the trail into a
step timeline). Step records are stored with the task (``store.save_progress``) right after each
step that changes the world or costs an agent run, so a task interrupted after any step resumes
with the next one instead of repeating it. Pure reads (``monitor_pr``) are never stored: a
resumed task must look at the pull request again, not at an old answer. A comment that is not a
command ends as ``ignored`` without touching the engine or writing anything but the result.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio
from pydantic import ValidationError as PydanticValidationError

from tamma_trio import step_log
from tamma_trio.comment_commands import Command, is_bot, parse_command
from tamma_trio.config import ServiceConfig
from tamma_trio.engine.base import IN_PROGRESS_LABEL, Engine
from tamma_trio.errors import EngineError, StaleEventError
from tamma_trio.models import (
    ESCALATED_FOR_APPROVAL,
    ISSUE_TYPES,
    Approval,
    CommentRef,
    IssueAssignedPayload,
    IssueCommentPayload,
    Outcome,
    PrCommentPayload,
    PrReviewRequestedPayload,
    Task,
    TaskType,
)
from tamma_trio.policy import AutoApproval, Failure, diff_auto_approval, plan_auto_approval
from tamma_trio.step_records import (
    Analysis,
    Branch,
    Changes,
    Issue,
    Plan,
    PRStatus,
    PullRequest,
    Record,
    Target,
    TestResult,
)
from tamma_trio.store.base import TaskStore
from tamma_trio.timeline import STEP_EVENT, step_detail

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Record)
T = TypeVar("T")

AUTO_APPROVED = "auto_approved"
MERGED = "merged"
MONITORING = "monitoring"
IGNORED = "ignored"

# Removing a worktree is quick; a hung cleanup must not hold a worker (or a drain) for long.
FINISH_TIMEOUT = 30.0

# The records a human approves when approving an escalated plan.
PLAN_STEPS = frozenset({"select_issue", "analyze_issue", "generate_plan"})


@dataclass
class TaskRun:
    """One attempt at one task: its lease token and the step records gathered so far."""

    task: Task
    token: str
    store: TaskStore
    progress: dict[str, Any] = field(default_factory=dict)

    async def step(self, name: str, model: type[R], call: Callable[[], Awaitable[R]]) -> R:
        """The stored record of step ``name`` if an earlier attempt finished it, else run it."""
        stored = self.progress.get(name)
        if stored is not None:
            try:
                return model.model_validate(stored)
            except PydanticValidationError:
                log.warning(
                    "stored %s record of task %s is unreadable; redoing", name, self.task.id
                )
        await self.record(STEP_EVENT, step_detail(name, self.task.attempts))
        record = await timed(self.task, name, call)
        self.progress[name] = record.model_dump(mode="json")
        await self.store.save_progress(self.task.id, self.token, dict(self.progress))
        return record

    def done(self, name: str) -> bool:
        return name in self.progress

    async def record(self, kind: str, detail: dict[str, Any]) -> None:
        await self.store.record_event(self.task.id, kind, detail)


async def timed(task: Task, step: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run one engine step and log its end at INFO (or its failure, with the output's tail)."""
    started = trio.current_time()
    try:
        result = await call()
    except Exception as exc:
        step_log.step_failed(task, step, trio.current_time() - started, exc)
        raise
    step_log.step_done(task, step, trio.current_time() - started)
    return result


class Handlers:
    """Runs a task's flow on the engine; the worker owns retries, timeouts and leases."""

    def __init__(self, engine: Engine, store: TaskStore, config: ServiceConfig) -> None:
        self.engine = engine
        self.store = store
        self.config = config

    async def run(self, task: Task, token: str) -> Outcome:
        if task.type is TaskType.PR_REVIEW_REQUESTED:
            review = PrReviewRequestedPayload.model_validate(task.payload)
            return await self._review_pr(task, review.repository, review.pull_request.number)
        if task.type is TaskType.PR_COMMENT:
            return await self._on_pr_comment(task, PrCommentPayload.model_validate(task.payload))
        run = TaskRun(task, token, self.store, dict(task.progress))
        if task.type is TaskType.ISSUE_COMMENT:
            return await self._on_issue_comment(
                run, IssueCommentPayload.model_validate(task.payload)
            )
        issue = IssueAssignedPayload.model_validate(task.payload)
        approved = await self._approval(run, issue.approval)
        return await self._implement_issue(
            run, issue.repository, issue.issue.number, approved, require_trigger=True
        )

    async def escalate(self, task: Task, failure: Failure) -> None:
        """Tell a human on the forge that the task failed for good."""
        reason = f"task {task.id} ({task.type.value}) failed after {task.attempts} attempt(s)"
        details = {"task_id": task.id, "code": failure.code, "error": failure.message}
        await self.engine.escalate(target_of(task), f"{reason}: {failure.message}", details)

    async def cancelled(self, task: Task) -> None:
        """An operator cancelled the running task: the issue loses its in-progress label and
        gets a comment saying who, so nobody waits for a pull request that will not come."""
        if task.type not in ISSUE_TYPES:
            return
        actors = [e.actor for e in await self.store.events(task.id) if e.kind == "cancelled"]
        who = actors[-1] if actors else "an operator"
        target = target_of(task)
        with trio.fail_after(FINISH_TIMEOUT):
            await self.engine.remove_label(target, IN_PROGRESS_LABEL)
            await self.engine.comment(target, cancelled_comment(task, who))

    async def finish(self, task: Task, outcome: Outcome | None) -> None:
        """Let the engine drop the task's workspace once the task has succeeded.

        Only the issue flow creates one (a branch in a worktree); pull request tasks and
        ignored comments never did, so they cost the engine nothing here. A task that failed,
        was cancelled (``outcome`` None) or waits for a human's approval keeps its worktree and
        logs for whoever looks into it: a rerun reuses them, retention prunes them.
        """
        if task.type not in ISSUE_TYPES or outcome is None:
            return
        if outcome.action in (IGNORED, ESCALATED_FOR_APPROVAL):
            return
        with trio.fail_after(FINISH_TIMEOUT):
            await self.engine.finish(target_of(task))

    # --- issues -----------------------------------------------------------------------------

    async def _on_issue_comment(self, run: TaskRun, payload: IssueCommentPayload) -> Outcome:
        ignored = self._not_a_command(payload.comment, Command.START)
        if ignored is not None:
            return ignored
        return await self._implement_issue(run, payload.repository, payload.issue.number)

    def _not_a_command(self, comment: CommentRef, expected: Command) -> Outcome | None:
        """The IGNORED outcome with its reason, unless the comment gives ``expected``."""
        found = parse_command(
            comment.body,
            comment.author,
            expected=expected,
            bot_name=self.config.bot_name,
            allowed_authors=self.config.command_authors,
        )
        if found.command is None:
            return Outcome(action=IGNORED, detail={"reason": found.reason})
        return None

    async def _approval(self, run: TaskRun, approval: Approval | None) -> str | None:
        """The stage a human approved (``plan`` or ``diff``), resuming from the escalated plan.

        The escalated task's analysis and plan are what the human read and approved, so this
        task starts from them instead of planning again; the branch is opened again (reusing
        the escalated task's worktree when it kept one). The bot can never approve.
        """
        if approval is None:
            return None
        if is_bot(approval.by, self.config.bot_name):
            raise EngineError("the bot can never approve", code="bot_approval", retryable=False)
        escalated = await self.store.get(approval.of_task)
        result = escalated.result or {}
        if escalated.subject != run.task.subject or result.get("action") != ESCALATED_FOR_APPROVAL:
            raise EngineError(
                f"task {approval.of_task} is not waiting for approval on {run.task.subject}",
                code="not_escalated",
                retryable=False,
            )
        stage = str(result.get("stage", "plan"))
        if not run.progress:
            run.progress = {k: v for k, v in escalated.progress.items() if k in PLAN_STEPS}
            await self.store.save_progress(run.task.id, run.token, dict(run.progress))
            detail = {"approved": True, "stage": stage, "approved_by": approval.by}
            await run.record("approval", {**detail, "of_task": approval.of_task})
        return stage

    async def _implement_issue(
        self,
        run: TaskRun,
        repository: str,
        number: int,
        approved: str | None = None,
        *,
        require_trigger: bool = False,
    ) -> Outcome:
        """The issue flow. An assignment or label event (``require_trigger``) must still hold
        when the issue is read again; a comment command is its own trigger."""
        engine = self.engine
        try:
            issue = await run.step(
                "select_issue",
                Issue,
                lambda: engine.select_issue(repository, number, require_trigger=require_trigger),
            )
        except StaleEventError as stale:  # closed, reassigned or unlabelled since the event
            return Outcome(action=IGNORED, detail={"reason": str(stale), "code": stale.code})
        analysis = await run.step("analyze_issue", Analysis, lambda: engine.analyze_issue(issue))
        plan = await run.step("generate_plan", Plan, lambda: engine.generate_plan(analysis))
        if not run.done("create_branch") and approved is None:
            decision = plan_auto_approval(plan, self.config.auto_approve)
            if not await self._approved(run, decision, issue.target):
                return _escalated(decision, issue)
        branch = await run.step("create_branch", Branch, lambda: engine.create_branch(plan))
        changes = await run.step(
            "implement_code", Changes, lambda: engine.implement_code(plan, branch)
        )
        if not run.done("run_tests") and approved != "diff":
            decision = diff_auto_approval(changes, self.config.auto_approve)
            if not await self._approved(run, decision, issue.target):
                return _escalated(decision, issue, branch=branch.name)
        tests = await run.step("run_tests", TestResult, lambda: self._passing_tests(changes))
        pull = await run.step(
            "create_pull_request",
            PullRequest,
            lambda: engine.create_pull_request(changes, plan, tests),
        )
        return Outcome(action=AUTO_APPROVED, detail={"issue": number, **_pr_detail(pull)})

    async def _approved(self, run: TaskRun, decision: AutoApproval, target: Target) -> bool:
        """Record the decision with every rule; escalate to a human when it is a no."""
        await run.record("approval", decision.as_event())
        step_log.approval_decided(
            run.task, decision.stage, decision.approved, list(decision.reasons)
        )
        if decision.approved:
            return True
        reason = f"the {decision.stage} needs a human's approval: " + "; ".join(decision.reasons)
        await self.engine.escalate(target, reason, decision.as_event())
        return False

    async def _passing_tests(self, changes: Changes) -> TestResult:
        """Failing tests end the task for a human: a retry would run the same code again."""
        result = await self.engine.run_tests(changes)
        if not result.passed:
            raise EngineError(
                f"tests failed (exit code {result.exit_code})",
                code="tests_failed",
                retryable=False,
                context={"output_tail": result.output_tail, "command": list(result.command)},
            )
        return result

    # --- pull requests ----------------------------------------------------------------------

    async def _on_pr_comment(self, task: Task, payload: PrCommentPayload) -> Outcome:
        ignored = self._not_a_command(payload.comment, Command.MERGE)
        if ignored is not None:
            return ignored
        return await self._review_pr(task, payload.repository, payload.pull_request.number)

    async def _review_pr(self, task: Task, repository: str, number: int) -> Outcome:
        """One look at the pull request: merge it when it may be merged, else say why not.

        Nothing is stored between the steps: after a crash the pull request is looked at again,
        and a merge that already happened shows up as ``merged``.
        """
        status = await self.engine.monitor_pr(repository, number)
        detail: dict[str, Any] = {"pull_request": number}
        if status.state == "merged":
            await self._finish_merged(repository, number, status.head_sha)
            return Outcome(action=MERGED, detail={**detail, "already_merged": True})
        if status.state == "closed":
            return Outcome(action=IGNORED, detail={**detail, "reason": "pull request is closed"})
        if not status.ready_to_merge:
            return Outcome(action=MONITORING, detail={**detail, **_status_detail(status)})
        merge = await timed(
            task, "merge_pr", lambda: self.engine.merge_pr(repository, number, status.head_sha)
        )
        if not merge.merged:
            reasons = [merge.message or "the forge refused the merge"]
            return Outcome(action=MONITORING, detail={**detail, "reasons": reasons})
        return Outcome(action=MERGED, detail={**detail, "sha": merge.sha})

    async def _finish_merged(self, repository: str, number: int, head_sha: str) -> None:
        """Let the engine finish the cleanup of a merge that happened before this attempt.

        The daemon may have died between its merge and the cleanup (branch, labels, closing
        the issue); merge_pr of a merged pull request does only the cleanup, once. A pull
        request that is not ours was merged by a human: there is nothing of ours to clean.
        """
        try:
            await self.engine.merge_pr(repository, number, head_sha)
        except EngineError as exc:
            if exc.retryable:
                raise
            log.info("%s#%d was merged elsewhere: %s", repository, number, exc)


def cancelled_comment(task: Task, who: str) -> str:
    return (
        f"Stopped: task {task.id} ({task.type.value}) was cancelled by {who} while it ran. "
        "Nothing more happens on this issue until the work is started again."
    )


def target_of(task: Task) -> Target:
    """The issue or pull request a task is about: where escalations and comments go."""
    payload = task.payload
    if task.type in ISSUE_TYPES:
        return Target(repository=str(payload["repository"]), number=int(payload["issue"]["number"]))
    number = int(payload["pull_request"]["number"])
    return Target(repository=str(payload["repository"]), number=number, kind="pull_request")


def _escalated(decision: AutoApproval, issue: Issue, **extra: Any) -> Outcome:
    detail = {"issue": issue.number, "stage": decision.stage, "reasons": list(decision.reasons)}
    return Outcome(action=ESCALATED_FOR_APPROVAL, detail={**detail, **extra})


def _pr_detail(pull: PullRequest) -> dict[str, Any]:
    return {"pull_request": {"number": pull.number, "url": pull.url, "head_sha": pull.head_sha}}


def _status_detail(status: PRStatus) -> dict[str, Any]:
    """Why the pull request cannot be merged yet: the engine's reasons plus what the fields say."""
    reasons = list(status.reasons)
    if status.mergeable is None:
        reasons.append("mergeability is still being computed")
    elif not status.mergeable:
        reasons.append("not mergeable (conflicts)")
    if not status.ci_passed:
        reasons.append(f"CI {status.ci_state}")
    if status.approvals < status.required_approvals:
        reasons.append(f"{status.approvals}/{status.required_approvals} approvals")
    if status.changes_requested:
        reasons.append("changes requested")
    unique = list(dict.fromkeys(reasons))
    return {"reasons": unique, "status": status.model_dump(mode="json")}
