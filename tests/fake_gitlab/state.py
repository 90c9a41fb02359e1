"""What the fake GitLab remembers: projects over local bare repositories, their issues, notes,
labels, merge requests, approvals, pipelines and members; which tokens belong to whom; and the
faults a test stages (401, 429, 409...). Shapes follow GitLab's REST API v4 reference; only the
fields the forge reads are filled, plus a few that show the shape.

``merge_statuses`` and ``pipelines`` are answers given in turn (the last one repeats), which is
how "checking, then mergeable" and "running, then success" are staged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fake_github.state import Fault, StagedFaults


@dataclass
class FakeProject:
    path: str
    bare: Path
    id: int
    default_branch: str = "main"
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # issue iid -> notes
    mr_notes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # MR iid -> notes
    labels: set[str] = field(default_factory=set)
    merge_requests: dict[int, dict[str, Any]] = field(default_factory=dict)
    approvals: dict[int, list[str]] = field(default_factory=dict)  # iid -> usernames
    reviewers: dict[int, dict[str, str]] = field(default_factory=dict)  # iid -> {name: state}
    merge_statuses: dict[int, list[str]] = field(default_factory=dict)  # answers, in turn
    pipelines: dict[str, list[str]] = field(default_factory=dict)  # sha -> statuses, in turn
    members: dict[str, int] = field(default_factory=dict)  # username -> access level
    next_issue: int = 1
    next_mr: int = 1


@dataclass
class FakeGitLab(StagedFaults):
    base_url: str = ""
    wall: Callable[[], float] = time.time
    tokens: dict[str, str] = field(default_factory=dict)  # token -> username
    users: dict[str, int] = field(default_factory=dict)  # username -> id
    projects: dict[str, FakeProject] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)
    git_auth: list[str] = field(default_factory=list)
    remaining: int = 2000
    notes_made: int = 0

    def next_note_id(self) -> int:
        """Note ids are unique across issues and merge requests, as on GitLab."""
        self.notes_made += 1
        return 9000 + self.notes_made

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v4"

    def user(self, username: str) -> dict[str, Any]:
        user_id = self.users.setdefault(username, len(self.users) + 100)
        return {"id": user_id, "username": username, "name": username, "state": "active"}

    def add_project(self, path: str, bare: Path) -> FakeProject:
        project = FakeProject(path, bare, id=len(self.projects) + 1)
        self.projects[path] = project
        return project

    def add_issue(
        self,
        path: str,
        title: str,
        description: str = "",
        *,
        labels: tuple[str, ...] = (),
        assignees: tuple[str, ...] = (),
        author: str = "alice",
    ) -> int:
        project = self.projects[path]
        iid = project.next_issue
        project.next_issue += 1
        project.issues[iid] = {
            "id": 5000 + iid,
            "iid": iid,
            "project_id": project.id,
            "title": title,
            "description": description,
            "state": "opened",
            "labels": list(labels),
            "assignees": [self.user(name) for name in assignees],
            "author": self.user(author),
            "web_url": f"{self.base_url}/{path}/-/issues/{iid}",
        }
        project.labels.update(labels)
        return iid

    def calls(self, method: str, pattern: str) -> int:
        return sum(1 for m, p, _ in self.log if m == method and re.search(pattern, p))
