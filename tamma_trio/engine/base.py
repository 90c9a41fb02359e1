"""The Engine protocol and the step records passed between the workflow's nine steps.

Records are frozen pydantic models so a handler can store each one with its task (as JSON) and a
restarted task resumes after its last finished step instead of repeating side effects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tamma_trio.models import NewTask
from tamma_trio.status import ForgeStats

Level = Literal["low", "medium", "high", "critical"]
LEVELS: tuple[Level, ...] = ("low", "medium", "high", "critical")


# The label an engine puts on an issue while it works on it (the handlers take it off when an
# operator cancels the work).
IN_PROGRESS_LABEL = "tamma:in-progress"


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(Record):
    """An issue or pull request on a forge: where comments, labels and escalations go."""

    repository: str
    number: int


class Issue(Record):
    repository: str
    number: int
    title: str
    body: str = ""
    labels: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    state: Literal["open", "closed"] = "open"
    url: str = ""
    author: str = ""

    @property
    def target(self) -> Target:
        return Target(repository=self.repository, number=self.number)


class Analysis(Record):
    issue: Issue
    complexity: Level
    risk_level: Level
    summary: str
    mentioned_paths: tuple[str, ...] = ()
    source: str = "heuristic"  # labels | agent | heuristic: why we believe the levels
    references: tuple[int, ...] = ()  # other issues named as #N in the body or comments


class PlannedFile(Record):
    path: str
    action: Literal["create", "modify", "delete"] = "modify"


class Plan(Record):
    issue: Issue
    summary: str
    approach: str = ""
    files: tuple[PlannedFile, ...] = ()
    estimated_hours: float = Field(ge=0)
    complexity: Level
    risk_level: Level
    testing_strategy: str = ""
    risks: tuple[str, ...] = ()


class Branch(Record):
    repository: str
    name: str
    base: str
    base_sha: str
    workdir: str


class ChangedFile(Record):
    path: str
    status: str  # git's letter: A, M, D, R...
    added: int = 0
    removed: int = 0


class AgentRun(Record):
    exit_code: int
    duration: float
    cost_usd: float | None = None
    session_id: str | None = None
    log_path: str = ""


class Changes(Record):
    branch: Branch
    head_sha: str
    files: tuple[ChangedFile, ...]
    lines_added: int
    lines_removed: int
    agent: AgentRun | None = None


class TestResult(Record):
    __test__ = False  # not a pytest class

    passed: bool
    command: tuple[str, ...]
    exit_code: int
    duration: float
    output_tail: str = ""


class PullRequest(Record):
    repository: str
    number: int
    url: str
    head_branch: str
    head_sha: str
    base: str
    state: Literal["open", "closed", "merged"] = "open"
    author: str = ""
    labels: tuple[str, ...] = ()

    @property
    def target(self) -> Target:
        return Target(repository=self.repository, number=self.number)


class PRStatus(Record):
    state: Literal["open", "closed", "merged"]
    mergeable: bool | None
    ci_state: Literal["success", "failure", "pending", "none"]
    ci_passed: bool
    approvals: int
    required_approvals: int
    changes_requested: bool
    head_sha: str
    reasons: tuple[str, ...] = ()

    @property
    def ready_to_merge(self) -> bool:
        return (
            self.state == "open"
            and self.mergeable is True
            and self.ci_passed
            and self.approvals >= self.required_approvals
            and not self.changes_requested
        )


class MergeResult(Record):
    merged: bool
    sha: str | None = None
    message: str = ""


class Engine(Protocol):
    """The story's nine steps plus comment, label and escalate.

    Every method raises tamma_trio.errors.EngineError with ``retryable`` set; steps are
    idempotent where they have side effects (a second create_pull_request finds the first).
    """

    async def initialize(self) -> None: ...

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

    async def add_labels(self, target: Target, labels: tuple[str, ...]) -> None: ...

    async def remove_label(self, target: Target, label: str) -> None: ...

    async def escalate(self, target: Target, reason: str, details: Mapping[str, Any]) -> None: ...

    async def finish(self, target: Target) -> None:
        """Release per-task resources (worktree, logs) once the task has succeeded."""

    async def author_may_command(self, repository: str, login: str) -> bool:
        """Whether ``login`` may give the bot commands on ``repository``, asked live.

        A remote forge asks its API (write permission); a payload's claim is never enough.
        """


class EngineContext(Record):
    """What the service tells an engine factory besides the engine's own config table.

    ``enqueue`` lets an engine that is also an event source (the local forge) add tasks the way a
    webhook would; it is None where no daemon runs (the CLI).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    bot_name: str
    database_path: Path | None  # the SQLite task store's file, shared by the local forge
    enqueue: Callable[[NewTask], Awaitable[None]] | None = None
    forge_stats: ForgeStats | None = None  # where a forge client counts its requests


EngineFactory = Callable[[Mapping[str, Any], EngineContext], Engine]
