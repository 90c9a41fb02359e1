"""Pure readings of GitLab's answers: the merge request's detailed_merge_status, the head
pipeline's status, approvals, and a member's access level. No I/O, so each rule is a table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

CiState = Literal["success", "failure", "pending", "none"]

# GitLab computes mergeability asynchronously; these mean "not known yet, ask again".
UNSETTLED = frozenset({"checking", "unchecked", "preparing", "approvals_syncing"})
# Blockers the engine reads itself (approvals, pipeline, reviewers asking for changes), so they
# do not make the MR unmergeable: each is reported as its own reason instead.
OWN_CHECKS = frozenset(
    {"mergeable", "not_approved", "ci_must_pass", "ci_still_running", "requested_changes"}
)
PIPELINE_FAILED = frozenset({"failed", "canceled"})
PIPELINE_PASSED = frozenset({"success", "skipped"})


def merge_state(detailed_status: str) -> tuple[bool | None, str]:
    """(mergeable, reason): None while GitLab is still checking; False names the blocker."""
    if detailed_status in UNSETTLED:
        return None, "mergeability is still being computed"
    if detailed_status in OWN_CHECKS:
        return True, ""
    if detailed_status in ("conflict", "need_rebase"):
        return False, "conflicts with the base branch"
    return False, f"GitLab blocks the merge ({detailed_status or 'unknown'})"


def pipeline_state(pipeline: Mapping[str, Any] | None, head_sha: str) -> CiState:
    """The head pipeline's verdict; a pipeline for another sha is no pipeline for this head."""
    if not pipeline or str(pipeline.get("sha", head_sha)) != head_sha:
        return "none"
    status = str(pipeline.get("status", ""))
    if status in PIPELINE_PASSED:
        return "success"
    return "failure" if status in PIPELINE_FAILED else "pending"


def approval_count(approvals: Mapping[str, Any]) -> int:
    """Distinct approvers from GET .../merge_requests/:iid/approvals."""
    users = {
        str((entry.get("user") or {}).get("username", ""))
        for entry in approvals.get("approved_by") or ()
    }
    return len(users - {""})


def changes_requested_by(reviewers: Any) -> tuple[str, ...]:
    """Reviewers whose state is ``requested_changes`` in GET .../merge_requests/:iid/reviewers
    (GitLab 17's "Request changes"); anything but a list of reviewer entries reads as none."""
    if not isinstance(reviewers, list):
        return ()
    names = [
        str((entry.get("user") or {}).get("username", ""))
        for entry in reviewers
        if isinstance(entry, Mapping) and entry.get("state") == "requested_changes"
    ]
    return tuple(dict.fromkeys(name for name in names if name))


def access_reaches(member: Mapping[str, Any] | None, required: int) -> bool:
    """A project member's ``access_level`` (10 guest ... 50 owner) against the required one."""
    level = member.get("access_level", 0) if member else 0
    return isinstance(level, int) and level >= required
