"""An engine that does nothing, for benchmarks: ``[engine] name = "bench.noop_engine:create"``.

Its monitor_pr reports an open pull request whose CI is still pending, so a pr_review_requested
task completes with action "monitoring" after one call and no I/O: the benchmark then measures
the daemon (claim, run, record), not a forge. With ``wait = SECONDS`` in ``[engine]``,
monitor_pr first sleeps that long, as a task that waits on an agent would (capacity runs).
Every other step refuses, non-retryably, so a benchmark that sends the wrong task type fails
loudly instead of measuring retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio

from tamma_trio.engine.base import EngineContext
from tamma_trio.errors import EngineError
from tamma_trio.resource import Resource
from tamma_trio.step_records import (
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

PENDING = PRStatus(
    state="open",
    mergeable=True,
    ci_state="pending",
    ci_passed=False,
    approvals=0,
    required_approvals=1,
    changes_requested=False,
    head_sha="0" * 40,
    reasons=("benchmark: CI never finishes",),
)


def _refuse(step: str) -> EngineError:
    return EngineError(f"the no-op engine has no {step} step", code="noop", retryable=False)


class NoopEngine(Resource):
    """Opened and closed like every engine (``async with``); there is nothing to open."""

    def __init__(self, wait: float = 0.0) -> None:
        self.wait = wait

    async def monitor_pr(self, repository: str, number: int) -> PRStatus:
        if self.wait:
            await trio.sleep(self.wait)
        return PENDING

    async def finish(self, target: Target) -> None:
        return None

    async def author_may_command(self, repository: str, login: str) -> bool:
        return True

    async def comment(self, target: Target, body: str) -> None:
        return None

    async def remove_label(self, target: Target, label: str) -> None:
        return None

    async def escalate(self, target: Target, reason: str, details: Mapping[str, Any]) -> None:
        return None

    async def select_issue(
        self, repository: str, number: int, *, require_trigger: bool = False
    ) -> Issue:
        raise _refuse("select_issue")

    async def analyze_issue(self, issue: Issue) -> Analysis:
        raise _refuse("analyze_issue")

    async def generate_plan(self, analysis: Analysis) -> Plan:
        raise _refuse("generate_plan")

    async def create_branch(self, plan: Plan) -> Branch:
        raise _refuse("create_branch")

    async def implement_code(self, plan: Plan, branch: Branch) -> Changes:
        raise _refuse("implement_code")

    async def run_tests(self, changes: Changes) -> TestResult:
        raise _refuse("run_tests")

    async def create_pull_request(
        self, changes: Changes, plan: Plan, tests: TestResult
    ) -> PullRequest:
        raise _refuse("create_pull_request")

    async def merge_pr(self, repository: str, number: int, expected_sha: str) -> MergeResult:
        raise _refuse("merge_pr")


def create(options: Mapping[str, Any], context: EngineContext) -> NoopEngine:
    """The EngineFactory; its one option is ``wait`` (seconds, default 0)."""
    return NoopEngine(wait=float(options.get("wait", 0.0)))
