"""The Engine protocol: the workflow's steps plus comment, label and escalate, and what the
service hands an engine factory. The records the steps pass live in tamma_trio.step_records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field

from tamma_trio.log import Redactor
from tamma_trio.models import NewTask
from tamma_trio.status import ForgeStats
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

# The label an engine puts on an issue while it works on it (the handlers take it off when an
# operator cancels the work).
IN_PROGRESS_LABEL = "tamma:in-progress"


class Engine(Protocol):
    """The issue-to-merge workflow's nine steps (select, analyse, plan, branch, implement, test,
    open a pull request, monitor it, merge it), plus what the handlers need besides: a comment
    and a label taken off when an operator cancels, an escalation, and a clean-up.

    Every method raises tamma_trio.errors.EngineError with ``retryable`` set; steps are
    idempotent where they have side effects (a second create_pull_request finds the first).
    """

    async def __aenter__(self) -> Self:
        """Open: the forge, the workspaces; raise EngineError when the engine cannot serve."""

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def aclose(self) -> None: ...

    async def select_issue(
        self, repository: str, number: int, *, require_trigger: bool = False
    ) -> Issue:
        """Read the issue again and claim it; StaleEventError when the event no longer holds."""

    async def analyze_issue(self, issue: Issue) -> Analysis: ...

    async def generate_plan(self, analysis: Analysis) -> Plan: ...

    async def create_branch(self, plan: Plan) -> Branch: ...

    async def implement_code(self, plan: Plan, branch: Branch) -> Changes: ...

    async def run_tests(self, changes: Changes) -> TestResult: ...

    async def create_pull_request(
        self, changes: Changes, plan: Plan, tests: TestResult
    ) -> PullRequest: ...

    async def monitor_pr(self, repository: str, number: int) -> PRStatus: ...

    async def merge_pr(self, repository: str, number: int, expected_sha: str) -> MergeResult: ...

    async def comment(self, target: Target, body: str) -> None: ...

    async def remove_label(self, target: Target, label: str) -> None: ...

    async def escalate(self, target: Target, reason: str, details: Mapping[str, Any]) -> None: ...

    async def finish(self, target: Target) -> None:
        """Release per-task resources (worktree, logs) once the task has succeeded."""

    async def author_may_command(self, repository: str, login: str) -> bool:
        """Whether ``login`` may give the bot commands on ``repository``, asked live.

        A remote forge asks its API (write permission); a payload's claim is never enough.
        """


class EngineContext(BaseModel):
    """What the service tells an engine factory besides the engine's own config table.

    ``enqueue`` lets an engine that is also an event source (the local forge) add tasks the way a
    webhook would; it is None where no daemon runs (the CLI).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    bot_name: str
    database_path: Path | None  # the SQLite task store's file: the local forge's sits beside it
    enqueue: Callable[[NewTask], Awaitable[None]] | None = None
    forge_stats: ForgeStats | None = None  # where a forge client counts its requests
    # Masks secrets in what the engine writes where people read it (escalation comments). The
    # service passes the one its log setup filled with the configured secrets; a fresh one
    # masks the token shapes only.
    redactor: Redactor = Field(default_factory=Redactor)


EngineFactory = Callable[[Mapping[str, Any], EngineContext], Engine]
