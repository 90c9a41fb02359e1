"""Pure readings of GitHub's answers: CI from check runs and the combined status, approvals from
reviews, and a collaborator's role against the permission comment commands need.

No I/O here, so each rule is tested as a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

CiState = Literal["success", "failure", "pending", "none"]

GOOD_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})
ROLES = ("none", "read", "triage", "write", "maintain", "admin")
# `permission` (the legacy field) knows only these; role_name carries triage and maintain.
LEGACY_ROLES = {"admin": "admin", "write": "write", "read": "read", "none": "none"}


def ci_state(check_runs: Iterable[Mapping[str, Any]], combined: Mapping[str, Any]) -> CiState:
    """Failure wins, then pending; success needs at least one check or status, all good.

    The combined status says "pending" when a commit has no statuses at all, so it only counts
    when it lists some.
    """
    states: list[CiState] = [_run_state(run) for run in check_runs]
    if combined.get("total_count", 0) or combined.get("statuses"):
        states.append(_combined_state(str(combined.get("state", "pending"))))
    if not states:
        return "none"
    for verdict in ("failure", "pending"):
        if verdict in states:
            return verdict
    return "success"


def _run_state(run: Mapping[str, Any]) -> CiState:
    if run.get("status") != "completed":
        return "pending"
    return "success" if run.get("conclusion") in GOOD_CONCLUSIONS else "failure"


def _combined_state(state: str) -> CiState:
    if state in ("success", "pending"):
        return "success" if state == "success" else "pending"
    return "failure"


def review_counts(reviews: Sequence[Mapping[str, Any]]) -> tuple[int, bool]:
    """(approvals, changes requested) from each reviewer's latest deciding review.

    A comment-only review decides nothing; a dismissed review withdraws that reviewer's vote.
    Reviews come oldest first, so a later one replaces an earlier one.
    """
    latest: dict[str, str] = {}
    for review in reviews:
        state = str(review.get("state", ""))
        login = str((review.get("user") or {}).get("login", ""))
        if login and state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[login] = state
    votes = list(latest.values())
    return votes.count("APPROVED"), "CHANGES_REQUESTED" in votes


def role_of(permission_reply: Mapping[str, Any]) -> str:
    """The collaborator's role from GET collaborators/{user}/permission."""
    role = str(permission_reply.get("role_name") or "")
    if role in ROLES:
        return role
    return LEGACY_ROLES.get(str(permission_reply.get("permission", "none")), "none")


def role_reaches(role: str, required: str) -> bool:
    """True when ``role`` is at least ``required`` in GitHub's order of repository roles."""
    rank = {name: index for index, name in enumerate(ROLES)}
    return rank.get(role, 0) >= rank.get(required, len(ROLES))
