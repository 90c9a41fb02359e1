"""A deterministic Engine for tests and benchmarks, configured through its `[engine]` table.

    [engine]
    name = "tests.fake_engine:create"
    delay = 0.0                                   # seconds every step takes (trio clock)
    delays = { implement_code = 20 }              # per step, overrides ``delay``
    failures = { run_tests = { times = 2, retryable = true } }   # times absent: always
    complexity = "low"                            # what analyze_issue reports
    files = ["src/app.py"]                        # planned and changed files
    tests_pass = true
    pr_state = "open"                             # and mergeable, ci_state, approvals ...
    journal = "/tmp/steps.log"                    # optional: one line per step, across processes
    gates = { implement_code = "/tmp/gate" }      # a FIFO the step waits on until a writer
                                                  # opens and closes it (another process's cue)

Sleeps use trio, so MockClock drives them; no I/O happens unless ``journal`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import trio
from pydantic import BaseModel, ConfigDict, Field
from trio_util import AsyncValue

from tamma_trio.engine.base import EngineContext
from tamma_trio.errors import EngineError, StaleEventError
from tamma_trio.resource import Resource
from tamma_trio.step_records import (
    Analysis,
    Branch,
    ChangedFile,
    Changes,
    Issue,
    Level,
    MergeResult,
    Plan,
    PlannedFile,
    PRStatus,
    PullRequest,
    Target,
    TestResult,
)

STEPS = (
    "select_issue",
    "analyze_issue",
    "generate_plan",
    "create_branch",
    "implement_code",
    "run_tests",
    "create_pull_request",
    "monitor_pr",
    "merge_pr",
    "escalate",
    "finish",
)


class StepFailure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    times: int | None = Field(default=None, ge=1)  # None: every call fails
    retryable: bool = True
    code: str = "fake_failure"
    stale: bool = False  # raise StaleEventError: the event no longer holds
    retry_at: float | None = None  # wall time a retry can help (a forge's rate-limit reset)


class FakeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    delay: float = Field(default=0.0, ge=0)
    delays: dict[str, float] = {}
    failures: dict[str, StepFailure] = {}
    complexity: Level = "low"
    risk: Level = "low"
    estimated_hours: float = 1.0
    files: tuple[str, ...] = ("src/app.py",)
    deleted: tuple[str, ...] = ()
    lines_added: int = 10
    lines_removed: int = 2
    tests_pass: bool = True
    pr_state: Literal["open", "closed", "merged"] = "open"
    mergeable: bool | None = True
    ci_state: Literal["success", "failure", "pending", "none"] = "success"
    approvals: int = 1
    required_approvals: int = 1
    merge_succeeds: bool = True
    journal: Path | None = None
    gates: dict[str, Path] = {}


class FakeEngine(Resource):
    """Records every call in ``calls`` as (step, subject) and answers from its options.

    For tests: ``times`` holds the trio time of each call, ``entered`` counts calls (wait on it
    with ``wait_value``), ``active``/``peak`` count steps in progress now and at most.
    """

    def __init__(self, options: FakeOptions, bot_name: str = "tamma") -> None:
        self.options = options
        self.bot_name = bot_name
        self.calls: list[tuple[str, str]] = []
        self.times: list[float] = []
        self.entered = AsyncValue(0)
        self.active = 0
        self.peak = 0
        self.escalations: list[tuple[Target, str, dict[str, Any]]] = []
        self.comments: list[tuple[str, str]] = []  # (subject, body)
        self.removed_labels: list[tuple[str, str]] = []  # (subject, label)
        self.initialized = False
        self.closed = False
        self.required_triggers: list[bool] = []
        self._failed: dict[str, int] = {}
        self.no_permission: set[str] = set()  # logins the live permission check refuses

    async def _step(self, step: str, subject: str) -> None:
        """Count the call, take the step's time, then fail if told to."""
        self.calls.append((step, subject))
        self.times.append(trio.current_time())
        if self.options.journal is not None:
            with self.options.journal.open("a", encoding="utf-8") as journal:
                journal.write(f"{step} {subject}\n")
        self.entered.value += 1
        gate = self.options.gates.get(step)
        if gate is not None:
            # A blocking open of a FIFO in a thread: the step goes on the moment the test
            # writes, with no polling; abandoned (daemon thread) if the task is cancelled.
            await trio.to_thread.run_sync(_pass_gate, gate, abandon_on_cancel=True)
        delay = self.options.delays.get(step, self.options.delay)
        if delay:
            self.active += 1
            self.peak = max(self.peak, self.active)
            try:
                await trio.sleep(delay)
            finally:
                self.active -= 1
        failure = self.options.failures.get(step)
        if failure is None:
            return
        seen = self._failed.get(step, 0)
        if failure.times is None or seen < failure.times:
            self._failed[step] = seen + 1
            if failure.stale:
                raise StaleEventError(f"{step}: the issue was closed (injected)", code=failure.code)
            raise EngineError(
                f"{step} failed (injected)",
                code=failure.code,
                retryable=failure.retryable,
                retry_at=failure.retry_at,
            )

    def steps(self) -> list[str]:
        return [step for step, _ in self.calls]

    async def _open(self) -> None:
        """Fails like a step when ``failures`` names "initialize" (an engine that cannot start)."""
        failure = self.options.failures.get("initialize")
        if failure is not None:
            raise EngineError("initialize failed (injected)", code=failure.code, retryable=False)
        self.initialized = True

    async def aclose(self) -> None:
        self.closed = True

    async def select_issue(
        self, repository: str, number: int, *, require_trigger: bool = False
    ) -> Issue:
        self.required_triggers.append(require_trigger)
        await self._step("select_issue", f"{repository}#{number}")
        return Issue(repository=repository, number=number, title=f"Issue {number}")

    async def analyze_issue(self, issue: Issue) -> Analysis:
        await self._step("analyze_issue", _subject(issue.target))
        return Analysis(
            issue=issue,
            complexity=self.options.complexity,
            risk_level=self.options.risk,
            summary=f"analysis of {issue.title}",
        )

    async def generate_plan(self, analysis: Analysis) -> Plan:
        await self._step("generate_plan", _subject(analysis.issue.target))
        files = [PlannedFile(path=path) for path in self.options.files]
        files += [PlannedFile(path=path, action="delete") for path in self.options.deleted]
        return Plan(
            issue=analysis.issue,
            summary=f"plan for {analysis.issue.title}",
            files=tuple(files),
            estimated_hours=self.options.estimated_hours,
            complexity=analysis.complexity,
            risk_level=analysis.risk_level,
        )

    async def create_branch(self, plan: Plan) -> Branch:
        await self._step("create_branch", _subject(plan.issue.target))
        return Branch(
            repository=plan.issue.repository,
            name=f"tamma/{plan.issue.number}-fake",
            base="main",
            base_sha="0" * 40,
            workdir=f"/nonexistent/{plan.issue.number}",
        )

    async def implement_code(self, plan: Plan, branch: Branch) -> Changes:
        await self._step("implement_code", _subject(plan.issue.target))
        files = [ChangedFile(path=path, status="M") for path in self.options.files]
        files += [ChangedFile(path=path, status="D") for path in self.options.deleted]
        return Changes(
            branch=branch,
            head_sha="1" * 40,
            files=tuple(files),
            lines_added=self.options.lines_added,
            lines_removed=self.options.lines_removed,
        )

    async def run_tests(self, changes: Changes) -> TestResult:
        await self._step("run_tests", changes.branch.name)
        passed = self.options.tests_pass
        return TestResult(
            passed=passed,
            command=("fake-tests",),
            exit_code=0 if passed else 1,
            duration=0.0,
            output_tail="" if passed else "1 failed",
        )

    async def create_pull_request(
        self, changes: Changes, plan: Plan, tests: TestResult
    ) -> PullRequest:
        await self._step("create_pull_request", _subject(plan.issue.target))
        number = 1000 + plan.issue.number
        return PullRequest(
            repository=plan.issue.repository,
            number=number,
            url=f"https://forge.invalid/{plan.issue.repository}/pull/{number}",
            head_branch=changes.branch.name,
            head_sha=changes.head_sha,
            base=changes.branch.base,
        )

    async def monitor_pr(self, repository: str, number: int) -> PRStatus:
        await self._step("monitor_pr", f"{repository}#{number}")
        options = self.options
        return PRStatus(
            state=options.pr_state,
            mergeable=options.mergeable,
            ci_state=options.ci_state,
            ci_passed=options.ci_state == "success",
            approvals=options.approvals,
            required_approvals=options.required_approvals,
            changes_requested=False,
            head_sha="2" * 40,
            reasons=() if options.ci_state == "success" else (f"CI is {options.ci_state}",),
        )

    async def merge_pr(self, repository: str, number: int, expected_sha: str) -> MergeResult:
        await self._step("merge_pr", f"{repository}#{number}@{expected_sha[:7]}")
        if not self.options.merge_succeeds:
            return MergeResult(merged=False, message="head moved")
        return MergeResult(merged=True, sha="3" * 40, message="merged")

    def _note(self, step: str, subject: str) -> None:
        """Record a forge call that never fails or waits (comments and labels)."""
        self.calls.append((step, subject))
        self.times.append(trio.current_time())

    async def comment(self, target: Target, body: str) -> None:
        self._note("comment", _subject(target))
        self.comments.append((_subject(target), body))

    async def remove_label(self, target: Target, label: str) -> None:
        self._note("remove_label", _subject(target))
        self.removed_labels.append((_subject(target), label))

    async def escalate(self, target: Target, reason: str, details: Mapping[str, Any]) -> None:
        await self._step("escalate", _subject(target))
        self.escalations.append((target, reason, dict(details)))

    async def finish(self, target: Target) -> None:
        await self._step("finish", _subject(target))

    async def author_may_command(self, repository: str, login: str) -> bool:
        self.calls.append(("author_may_command", login))
        return login not in self.no_permission


def _subject(target: Target) -> str:
    return f"{target.repository}#{target.number}"


def create(options: Mapping[str, Any], context: EngineContext) -> FakeEngine:
    """The EngineFactory: ``[engine] name = "tests.fake_engine:create"``."""
    return FakeEngine(FakeOptions.model_validate(dict(options)), bot_name=context.bot_name)


def _pass_gate(gate: Path) -> None:
    with gate.open("rb") as fifo:
        fifo.read()
