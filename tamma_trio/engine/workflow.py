"""The real engine: the nine workflow steps over a Forge, a git Workspace and a coding agent.

Each step with a side effect can run again after an interruption without repeating it: the
claim comment carries a marker, create_branch reuses our branch, implement_code recognises its
own commit, create_pull_request finds the open pull request of the branch, merge_pr treats an
already merged pull request as done. The handlers store every step's record with the task and
call the next step after a restart; these rules cover a crash in the middle of a step.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from tamma_trio.engine import prompts
from tamma_trio.engine.agent import AgentRequest, AgentRunner, Mode, extract_json_object
from tamma_trio.engine.analysis import assess_issue, draft_plan
from tamma_trio.engine.base import IN_PROGRESS_LABEL, EngineContext
from tamma_trio.engine.cgroups import Cgroups
from tamma_trio.engine.forge.base import Forge
from tamma_trio.engine.git import minimal_env
from tamma_trio.engine.kept_work import KeptIssue, KeptWorkLayout
from tamma_trio.engine.limits import Limits, RunGuard, enforcement
from tamma_trio.engine.process import run_in_group
from tamma_trio.engine.workflow_options import TestsOptions, parse_options
from tamma_trio.engine.workflow_ports import build_ports
from tamma_trio.engine.workspaces import Workspaces
from tamma_trio.errors import EngineError, StaleEventError
from tamma_trio.log import Redactor
from tamma_trio.resource import Resource
from tamma_trio.step_records import (
    AgentRun,
    Analysis,
    Branch,
    Changes,
    Issue,
    MergeResult,
    Plan,
    PRStatus,
    PullRequest,
    Target,
    TestResult,
)

log = logging.getLogger(__name__)

IN_PROGRESS = IN_PROGRESS_LABEL
NEEDS_HUMAN = "needs-human-review"
AUTOMATED = "tamma-automated"
ISSUE_OF_BRANCH = re.compile(r"^tamma/(\d+)-")
STALE_CODES = frozenset({"issue_closed", "assigned_elsewhere"})


class WorkflowEngine(Resource):
    def __init__(
        self,
        *,
        forge: Forge,
        workspaces: Workspaces,
        agent: AgentRunner,
        tests: TestsOptions,
        bot_name: str,
        structured: bool = False,
        trigger_label: str = "tamma",
        redactor: Redactor,
    ) -> None:
        self.forge = forge
        self.workspaces = workspaces
        self.agent = agent
        self.tests = tests
        self.tests_guard = RunGuard(tests.limits(), "the tests")
        self.bot = bot_name
        self.structured = structured
        self.trigger_label = trigger_label
        self._opened = AsyncExitStack()  # the forge, once entered
        self.redactor = redactor

    async def _open(self) -> None:
        """Open the forge and clone or fetch every served repository now, so a bad setup
        stops the daemon early instead of failing its first task."""
        await self._opened.enter_async_context(self.forge)
        await self.workspaces.prepare_all()
        agent_limits = self.agent.guard.limits if self.agent.guard else Limits()
        if agent_limits or self.tests_guard.limits:
            Cgroups.enable()
        log.info(
            "resource limits: agent %s; tests %s; enforced by %s",
            agent_limits.describe(),
            self.tests_guard.limits.describe(),
            enforcement(),
        )

    async def aclose(self) -> None:
        await self._opened.aclose()

    def _served(self, repository: str) -> None:
        self.workspaces.check_served(repository)

    async def author_may_command(self, repository: str, login: str) -> bool:
        """Live check of a comment author's right to command the bot (the forge decides)."""
        if repository not in self.forge.repositories:
            return False
        return await self.forge.author_may_command(repository, login)

    # --- 1-3: select, analyse, plan -------------------------------------------------------
    async def select_issue(
        self, repository: str, number: int, *, require_trigger: bool = False
    ) -> Issue:
        """Read the issue again, refuse what is not ours to take, then claim: assign, label,
        comment once.

        Events go stale between the webhook and the task: a closed or reassigned issue raises
        StaleEventError (the task is ignored). With ``require_trigger`` (an assignment or label
        event) the issue must still be assigned to the bot or carry the trigger label.
        """
        self._served(repository)
        issue = await self.forge.get_issue(repository, number)
        comments = await self.forge.list_comments(issue.target)
        claimed = any(c.author == self.bot and prompts.CLAIM_MARKER in c.body for c in comments)
        refusal = self._refusal(issue, claimed)
        if refusal and refusal[0] in STALE_CODES:
            raise StaleEventError(refusal[1], code=refusal[0])
        if refusal:
            raise EngineError(refusal[1], code=refusal[0], retryable=False)
        wanted = self.bot in issue.assignees or self.trigger_label in issue.labels
        if require_trigger and not (wanted or claimed):
            raise StaleEventError(
                f"{repository}#{number} is no longer assigned to {self.bot} "
                f"nor labelled {self.trigger_label}",
                code="not_triggered",
            )
        if self.bot not in issue.assignees:
            await self.forge.assign(issue.target, self.bot)
        if IN_PROGRESS not in issue.labels:
            await self.forge.add_labels(issue.target, (IN_PROGRESS,))
        if not claimed:
            await self.forge.comment(issue.target, prompts.claim_comment(self.bot), self.bot)
        return await self.forge.get_issue(repository, number)

    def _refusal(self, issue: Issue, claimed: bool) -> tuple[str, str] | None:
        where = f"{issue.repository}#{issue.number}"
        if issue.state != "open":
            return "issue_closed", f"{where} is closed"
        if NEEDS_HUMAN in issue.labels:
            return "needs_human", f"{where} is labelled {NEEDS_HUMAN}"
        others = [login for login in issue.assignees if login != self.bot]
        if others:
            return "assigned_elsewhere", f"{where} is assigned to {', '.join(others)}"
        if IN_PROGRESS in issue.labels and not claimed:
            return "claimed_elsewhere", f"{where} is {IN_PROGRESS} without our claim"
        return None

    async def _human_comments(self, target: Target) -> list[str]:
        return [c.body for c in await self.forge.list_comments(target) if c.author != self.bot]

    async def analyze_issue(self, issue: Issue) -> Analysis:
        comments = await self._human_comments(issue.target)
        answer = None
        if self.structured:
            answer = await self._ask(issue, "analyze", prompts.analyze_prompt(issue, comments))
        return assess_issue(issue, comments, answer)

    async def generate_plan(self, analysis: Analysis) -> Plan:
        issue = analysis.issue
        answer = None
        if self.structured:
            comments = await self._human_comments(issue.target)
            answer = await self._ask(issue, "plan", prompts.plan_prompt(analysis, comments))
        return draft_plan(analysis, answer)

    async def _ask(self, issue: Issue, mode: Mode, prompt: str) -> dict[str, Any] | None:
        """The agent's JSON answer, from a throw-away worktree of the default branch."""
        workspace = await self.workspaces.get(issue.repository)
        async with workspace.scratch_worktree(issue.number) as workdir:
            report = await self.agent.run(
                AgentRequest(
                    mode,
                    prompt,
                    workdir,
                    workspace.task_dir(issue.number),
                    issue.number,
                    issue.title,
                )
            )
        return extract_json_object(report.text)

    # --- 4-6: branch, implement, test -----------------------------------------------------
    async def create_branch(self, plan: Plan) -> Branch:
        workspace = await self.workspaces.get(plan.issue.repository)
        return await workspace.open_branch(plan.issue.number, plan.issue.title)

    async def implement_code(self, plan: Plan, branch: Branch) -> Changes:
        """Run the agent, then commit its edits as the bot; refuse a run that changed nothing."""
        number = plan.issue.number
        workspace = await self.workspaces.get(branch.repository)
        workdir = await workspace.ensure_worktree(branch)
        if await workspace.head_is_our_implementation(branch, number):
            return await self._changes(branch, None)  # resumed after our commit
        start = await workspace.head(workdir)
        if await workspace.is_dirty(workdir):
            await workspace.discard_changes(workdir)  # an interrupted run's leftovers
        comments = await self._human_comments(plan.issue.target)
        prompt = prompts.implement_prompt(plan, branch, self.tests.command, comments)
        request = AgentRequest(
            "implement",
            prompt,
            workdir,
            workspace.task_dir(number),
            number,
            plan.issue.title,
            branch.name,
        )
        report = await self.agent.run(request)
        await workspace.verify_branch(branch)
        await workspace.squash_to(workdir, start)  # the engine commits, never the agent
        if not await workspace.commit_all(workdir, prompts.commit_subject(plan), number):
            raise EngineError(
                "agent produced no changes",
                code="no_changes",
                retryable=False,
                context={"log": report.run.log_path},
            )
        return await self._changes(branch, report.run)

    async def _changes(self, branch: Branch, run: AgentRun | None) -> Changes:
        workdir = Path(branch.workdir)
        workspace = await self.workspaces.get(branch.repository)
        files = await workspace.diff_stats(workdir, branch.base_sha)
        return Changes(
            branch=branch,
            head_sha=await workspace.head(workdir),
            files=files,
            lines_added=sum(f.added for f in files),
            lines_removed=sum(f.removed for f in files),
            agent=run,
        )

    async def run_tests(self, changes: Changes) -> TestResult:
        """The configured test command in the worktree, in its own process group, bounded."""
        workspace = await self.workspaces.get(changes.branch.repository)
        workdir = await workspace.ensure_worktree(changes.branch)
        head = await workspace.head(workdir)
        if head != changes.head_sha:
            raise EngineError(
                f"{changes.branch.name} is at {head[:12]}, not the implemented "
                f"{changes.head_sha[:12]}",
                code="branch_moved",
                retryable=False,
            )
        number = int(workdir.name)
        outcome = await run_in_group(
            self.tests.command,
            cwd=workdir,
            env=minimal_env(),
            timeout=self.tests.timeout,
            log_path=workspace.task_dir(number) / "tests.log",
            log_max_bytes=self.tests.log_max_bytes,
            guard=self.tests_guard,
        )
        if outcome.limit_exceeded:
            raise EngineError(
                self.tests_guard.message(outcome.limit_exceeded),
                code="limit_exceeded",
                retryable=False,
                context={"output_tail": outcome.tail[-1500:]},
            )
        note = f"\n[timed out after {self.tests.timeout:g} s]" if outcome.timed_out else ""
        return TestResult(
            passed=outcome.exit_code == 0 and not outcome.timed_out,
            command=self.tests.command,
            exit_code=outcome.exit_code,
            duration=round(outcome.duration, 3),
            output_tail=outcome.tail[-2000:] + note,
        )

    # --- 7-9: pull request, monitor, merge ------------------------------------------------
    async def create_pull_request(
        self, changes: Changes, plan: Plan, tests: TestResult
    ) -> PullRequest:
        """Push, then find or open the pull request, then say so on the issue (once)."""
        if not tests.passed:
            raise EngineError(
                "tests failed; no pull request is opened", code="tests_failed", retryable=False
            )
        branch = changes.branch
        workspace = await self.workspaces.get(branch.repository)
        await workspace.push(branch, changes.head_sha)
        pr = await self.forge.open_pull_request(
            branch.repository,
            title=prompts.commit_subject(plan),
            body=prompts.pr_body(plan, changes, tests),
            head_branch=branch.name,
            base=branch.base,
            author=self.bot,
            labels=(AUTOMATED,),
        )
        await self._comment_once(plan.issue.target, prompts.pr_opened_comment(pr))
        return pr

    async def monitor_pr(self, repository: str, number: int) -> PRStatus:
        self._served(repository)
        return await self.forge.pull_request_status(repository, number)

    async def merge_pr(self, repository: str, number: int, expected_sha: str) -> MergeResult:
        """Merge our pull request when it is ready, guarded by the head sha we checked."""
        self._served(repository)
        pr = await self.forge.get_pull_request(repository, number)
        if pr.author != self.bot and AUTOMATED not in pr.labels:
            raise EngineError(
                f"{repository}!{number} was not opened by {self.bot}; it is not ours to merge",
                code="not_our_pull_request",
                retryable=False,
            )
        status = await self.forge.pull_request_status(repository, number)
        if status.state == "merged":
            await self._after_merge(pr, None)
            return MergeResult(merged=True, message="already merged")
        if not status.ready_to_merge:
            return MergeResult(merged=False, message="; ".join(status.reasons) or "not ready")
        message = prompts.merge_message(pr)
        result = await self.forge.merge_pull_request(repository, number, expected_sha, message)
        if result.merged:
            await self._after_merge(pr, result.sha)
        return result

    async def _after_merge(self, pr: PullRequest, sha: str | None) -> None:
        """Delete the branch; on the issue: drop in-progress, say merged (once), close it."""
        await self.forge.delete_branch(pr.repository, pr.head_branch)
        found = ISSUE_OF_BRANCH.match(pr.head_branch)
        if found is None:
            return
        issue = Target(repository=pr.repository, number=int(found.group(1)))
        await self.forge.remove_label(issue, IN_PROGRESS)
        await self._comment_once(issue, prompts.merged_comment(pr, sha))
        await self.forge.close_issue(issue)

    # --- comments, labels, escalation, cleanup --------------------------------------------
    async def _comment_once(self, target: Target, body: str) -> None:
        marker = body.split("\n", 1)[0]
        comments = await self.forge.list_comments(target)
        if not any(c.author == self.bot and marker in c.body for c in comments):
            await self.forge.comment(target, body, self.bot)

    async def comment(self, target: Target, body: str) -> None:
        await self.forge.comment(target, body, self.bot)

    async def remove_label(self, target: Target, label: str) -> None:
        await self.forge.remove_label(target, label)

    async def escalate(self, target: Target, reason: str, details: Mapping[str, Any]) -> None:
        """Tell a human why, label needs-human-review, drop in-progress; repeat-safe.

        The comment is public and may quote agent or test output, so it is redacted like a log.
        """
        body = self.redactor.redact(prompts.escalation_comment(reason, details))
        comments = await self.forge.list_comments(target)
        if not any(c.author == self.bot and c.body == body for c in comments):
            await self.forge.comment(target, body, self.bot)
        await self.forge.add_labels(target, (NEEDS_HUMAN,))
        await self.forge.remove_label(target, IN_PROGRESS)

    def kept_work(self) -> KeptWorkLayout:
        """Where failed and escalated tasks' worktrees and logs stay until retention."""
        workspaces = self.workspaces
        return KeptWorkLayout(
            workspaces.root_of, self.forge.repositories, workspaces.git, self._discard_kept
        )

    async def _discard_kept(self, kept: KeptIssue) -> None:
        workspace = await self.workspaces.get(kept.repository)
        await workspace.discard_kept(kept)

    async def finish(self, target: Target) -> None:
        """Remove the task's worktree and logs. Issues and pull requests share one number
        sequence, so a pull request's number never names an issue's worktree."""
        workspace = await self.workspaces.get(target.repository)
        await workspace.remove_worktree(target.number)
        await workspace.remove_task_files(target.number)


def create_engine(options: Mapping[str, Any], context: EngineContext) -> WorkflowEngine:
    """The `workflow` engine from its `[engine]` table (ConfigError when the table is invalid)."""
    settings = parse_options(options).resolved(Path.cwd())
    ports = build_ports(settings, context)
    return WorkflowEngine(
        forge=ports.forge,
        workspaces=ports.workspaces,
        agent=ports.agent,
        tests=settings.tests,
        bot_name=context.bot_name,
        structured=settings.agent.structured,
        trigger_label=settings.forge.trigger_label,
        redactor=context.redactor,
    )
