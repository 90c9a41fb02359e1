"""The step records passed between the workflow's steps, the policy, the handlers and the forges.

Records are frozen pydantic models so a handler can store each one with its task (as JSON) and a
restarted task resumes after its last finished step instead of repeating side effects. They sit
below the engine and the policy (they import nothing of tamma_trio) so the pure decisions in
policy.py can read them without depending on the engine.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["low", "medium", "high", "critical"]
LEVELS: tuple[Level, ...] = ("low", "medium", "high", "critical")


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


TargetKind = Literal["issue", "pull_request"]


class Target(Record):
    """An issue or pull request on a forge: where comments, labels and escalations go.

    ``kind`` matters where issues and merge requests are numbered apart (GitLab's issue #3 and
    merge request !3 are two objects); on GitHub a pull request is also an issue. It defaults to
    ``issue`` so records stored before it existed still read.
    """

    repository: str
    number: int
    kind: TargetKind = "issue"


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
    # How people write it: GitLab's merge request !7 (its #7 is an issue); empty is "#7".
    reference: str = ""

    @property
    def target(self) -> Target:
        return Target(repository=self.repository, number=self.number, kind="pull_request")

    @property
    def name(self) -> str:
        """ "pull request #7", or "merge request !7" on GitLab, for comments and messages."""
        if self.reference.startswith("!"):
            return f"merge request {self.reference}"
        return f"pull request {self.reference or f'#{self.number}'}"


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
