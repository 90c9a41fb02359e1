"""What the fake GitHub remembers: repositories over local bare git repositories, their issues,
comments, labels, pull requests, reviews, checks and collaborators; who may call it (tokens, an
App with its key and installations); and the faults a test asks for (a status, headers and a
body for the next calls matching a method and path), which is how 401, rate limits and 5xx are
staged. Shapes follow GitHub's REST reference; only the fields the forge reads are filled, plus
a few that show the shape (html_url, node ids are left out).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BOT_LOGIN = "tamma-bot"
APP_SLUG = "tamma-app"


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    times: int


@dataclass
class FakeRepo:
    full_name: str
    bare: Path
    default_branch: str = "main"
    installation_id: int = 1
    items: dict[int, dict[str, Any]] = field(default_factory=dict)  # issues and pulls
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    labels: set[str] = field(default_factory=set)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> role_name
    mergeable: dict[int, list[bool | None]] = field(default_factory=dict)  # answers, in turn
    next_number: int = 1

    def number(self) -> int:
        self.next_number += 1
        return self.next_number - 1


@dataclass
class FakeGitHub:
    """The server's state; tests arrange it and read it back."""

    base_url: str = ""
    wall: Callable[[], float] = time.time
    tokens: dict[str, str] = field(default_factory=dict)  # personal token -> login
    app_id: int = 0
    app_public_key: bytes = b""
    token_lifetime: float = 3600.0
    installation_tokens: dict[str, tuple[int, float]] = field(default_factory=dict)
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    git_auth: list[str] = field(default_factory=list)  # Authorization headers git sent
    remaining: int = 5000
    write_gate: Any = None  # a trio.Event that holds comment posts until set (ordering tests)
    writes_entered: int = 0
    _serial: int = 1000

    def serial(self) -> int:
        self._serial += 1
        return self._serial

    # --- arranging -------------------------------------------------------------------------
    def add_repo(self, full_name: str, bare: Path, *, installation_id: int = 1) -> FakeRepo:
        repo = FakeRepo(full_name, bare, installation_id=installation_id)
        self.repos[full_name] = repo
        return repo

    def add_issue(
        self,
        full_name: str,
        title: str,
        body: str = "",
        *,
        labels: tuple[str, ...] = (),
        assignees: tuple[str, ...] = (),
        author: str = "alice",
    ) -> int:
        repo = self.repos[full_name]
        number = repo.number()
        repo.items[number] = {
            "id": self.serial(),
            "number": number,
            "title": title,
            "body": body,
            "state": "open",
            "state_reason": None,
            "labels": [self.label(name) for name in labels],
            "assignees": [self.user(login) for login in assignees],
            "user": self.user(author),
            "html_url": f"{self.base_url}/{full_name}/issues/{number}",
        }
        repo.labels.update(labels)
        return number

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` on a path matching ``path`` get this answer."""
        body = body if body is not None else {"message": "staged failure"}
        self.faults.append(Fault(method, re.compile(path), status, headers or {}, body, times))

    def take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.path.search(path) and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    # --- shapes ----------------------------------------------------------------------------
    def user(self, login: str) -> dict[str, Any]:
        kind = "Bot" if login.endswith("[bot]") else "User"
        return {"login": login, "id": abs(hash(login)) % 10**8, "type": kind}

    def label(self, name: str) -> dict[str, Any]:
        return {"name": name, "color": "ededed", "default": False}

    def calls(self, method: str, pattern: str) -> int:
        """How many answered calls matched (tests count retries and cache hits with it)."""
        return sum(1 for m, p, _ in self.log if m == method and re.search(pattern, p))
