"""Pure readings of GitHub answers: CI aggregation, review votes, roles; and the git credential
environment (forge-neutral)."""

from __future__ import annotations

from typing import Any

import pytest

from tamma_trio.engine.forge.github.client import rate_limit_wait
from tamma_trio.engine.forge.github.verdicts import ci_state, review_counts, role_of, role_reaches
from tamma_trio.engine.git_auth import basic_auth_env

NO_STATUSES = {"state": "pending", "statuses": [], "total_count": 0}


def run(status: str, conclusion: str | None = None) -> dict[str, Any]:
    return {"name": "ci", "status": status, "conclusion": conclusion}


@pytest.mark.parametrize(
    ("runs", "combined", "expected"),
    [
        ([], NO_STATUSES, "none"),  # "pending" with no statuses is not a pending check
        ([run("queued")], NO_STATUSES, "pending"),
        ([run("in_progress")], NO_STATUSES, "pending"),
        ([run("completed", "success"), run("completed", "skipped")], NO_STATUSES, "success"),
        ([run("completed", "neutral")], NO_STATUSES, "success"),
        ([run("completed", "success"), run("in_progress")], NO_STATUSES, "pending"),
        ([run("completed", "failure"), run("in_progress")], NO_STATUSES, "failure"),
        ([run("completed", "timed_out")], NO_STATUSES, "failure"),
        ([run("completed", "cancelled")], NO_STATUSES, "failure"),
        ([], {"state": "success", "statuses": [{}], "total_count": 1}, "success"),
        ([], {"state": "error", "statuses": [{}], "total_count": 1}, "failure"),
        ([run("completed", "success")], {"state": "pending", "total_count": 1}, "pending"),
    ],
)
def test_ci_state(runs: list[dict[str, Any]], combined: dict[str, Any], expected: str) -> None:
    assert ci_state(runs, combined) == expected


def review(login: str, state: str) -> dict[str, Any]:
    return {"user": {"login": login}, "state": state}


@pytest.mark.parametrize(
    ("reviews", "expected"),
    [
        ([], (0, False)),
        ([review("a", "APPROVED"), review("b", "APPROVED")], (2, False)),
        ([review("a", "APPROVED"), review("a", "APPROVED")], (1, False)),
        ([review("a", "CHANGES_REQUESTED"), review("a", "APPROVED")], (1, False)),
        ([review("a", "APPROVED"), review("a", "CHANGES_REQUESTED")], (0, True)),
        (
            [review("a", "APPROVED"), review("a", "COMMENTED")],
            (1, False),
        ),  # a comment decides nothing
        ([review("a", "APPROVED"), review("a", "DISMISSED")], (0, False)),
    ],
)
def test_review_counts_use_each_reviewers_latest_vote(
    reviews: list[dict[str, Any]], expected: tuple[int, bool]
) -> None:
    assert review_counts(reviews) == expected


@pytest.mark.parametrize(
    ("reply", "required", "allowed"),
    [
        ({"permission": "write", "role_name": "write"}, "write", True),
        ({"permission": "write", "role_name": "maintain"}, "maintain", True),
        ({"permission": "read", "role_name": "triage"}, "write", False),
        ({"permission": "read", "role_name": "triage"}, "triage", True),
        ({"permission": "admin"}, "maintain", True),  # older servers: no role_name
        ({"permission": "none", "role_name": "none"}, "read", False),
        ({"permission": "none"}, "none", True),
    ],
)
def test_roles_against_the_command_permission(
    reply: dict[str, Any], required: str, allowed: bool
) -> None:
    assert role_reaches(role_of(reply), required) is allowed


@pytest.mark.parametrize(
    ("status", "headers", "body", "wait"),
    [
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1030"}, {}, 31.0),
        (429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "990"}, {}, 1.0),
        (403, {"retry-after": "12"}, {"message": "secondary rate limit"}, 12.0),
        (429, {}, {}, 60.0),
        (403, {}, {"message": "You have exceeded a secondary rate limit."}, 60.0),
        (403, {"x-ratelimit-remaining": "12"}, {"message": "Resource not accessible"}, None),
        (404, {"retry-after": "5"}, {}, None),
    ],
)
def test_rate_limit_wait(
    status: int, headers: dict[str, str], body: dict[str, Any], wait: float | None
) -> None:
    assert rate_limit_wait(status, headers, body, now=1000.0) == wait


def test_git_credentials_are_an_environment_scoped_to_the_clone_host() -> None:
    env = basic_auth_env("https://ghe.example.com/acme/demo.git", "x-access-token", "s3cret")
    assert env == {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.https://ghe.example.com/.extraHeader",
        "GIT_CONFIG_VALUE_0": "Authorization: Basic eC1hY2Nlc3MtdG9rZW46czNjcmV0",
    }
    assert basic_auth_env("/srv/git/demo.git", "x-access-token", "s3cret") == {}
