"""Pure decisions: how long to wait before a retry, whether a failure is worth retrying, and
whether a plan (and later its real diff) may go ahead without a human.

Nothing here does I/O or reads a clock, so every rule is checked by a table-driven test and the
worker, the handlers and an operator reading an event all see the same reasons.
"""

from __future__ import annotations

import fnmatch
import posixpath
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import trio
from pydantic import ValidationError as PydanticValidationError

from tamma_trio.config import AutoApproveConfig
from tamma_trio.errors import EngineError, ValidationError
from tamma_trio.step_records import Changes, Plan

# Backoff is spread downwards by up to this fraction, so that tasks failing together do not
# retry together, while min(retry_delay * 2**retry, max_retry_delay) stays a true upper bound.
DEFAULT_JITTER = 0.2

# Labels that mark a breaking change: never auto-approved: a breaking change needs a human by
# definition, whatever its size.
BREAKING_LABELS = frozenset({"breaking", "breaking-change", "breaking change"})

MAX_ERROR_CHARS = 500


# --- retries --------------------------------------------------------------------------------


def retry_delay(
    retry: int,
    base: float,
    cap: float,
    *,
    jitter: float = DEFAULT_JITTER,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first retry).

    ``rng`` returns a float in [0, 1); tests pass ``lambda: 0.0`` for the exact schedule.
    """
    if retry < 0:
        raise ValueError(f"retry must be >= 0, got {retry}")
    ceiling = min(base * 2.0 ** min(retry, 64), cap)
    return ceiling * (1.0 - jitter * rng())


def retries_left(attempts: int, max_retries: int) -> bool:
    """True while another attempt is allowed: "max 3 retries" means at most 4 attempts."""
    return attempts <= max_retries


@dataclass(frozen=True)
class Failure:
    """What went wrong in an attempt, in the words stored on the task and in its events."""

    code: str
    message: str
    retryable: bool
    retry_at: float | None = None  # wall time before which a retry cannot help (rate limit)


# A task whose forge stays rate-limited is deferred at most this many times without spending a
# retry (GitHub's primary budget resets hourly: about a day of refusals); after that a rate
# limit spends an attempt like any failure, so a task never waits forever.
MAX_DEFERRALS = 24


def deferral_time(failure: Failure, deferrals: int, now: float) -> float | None:
    """When to run again without spending an attempt, or None to retry as usual.

    Only a failure that names the time a retry can first help (a forge's rate-limit reset) is
    deferred: the task did nothing wrong, the forge asked it to wait.
    """
    if not failure.retryable or failure.retry_at is None or deferrals >= MAX_DEFERRALS:
        return None
    return max(failure.retry_at, now)


def classify(exc: BaseException) -> Failure:
    """Map an exception from a handler to a Failure.

    Engine errors say themselves whether a retry can help; a task timeout may be a slow forge
    and is retried; bad input stays bad, so it is not; anything unexpected is retried within
    the task's budget, because transient causes (a dropped connection) are the common case.
    """
    if isinstance(exc, EngineError):
        return Failure(exc.code, _clip(str(exc)), exc.retryable, exc.retry_at)
    if isinstance(exc, trio.TooSlowError):
        return Failure("task_timeout", "the task exceeded its timeout", True)
    if isinstance(exc, ValidationError | PydanticValidationError):
        return Failure("invalid_input", _clip(f"invalid input: {exc}"), False)
    return Failure("internal_error", _clip(f"{type(exc).__name__}: {exc}"), True)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


# --- auto-approval --------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One rule and how it went, so a decision can be explained rule by rule."""

    rule: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class AutoApproval:
    """The decision and every rule behind it; ``reasons`` are the rules that said no."""

    stage: str  # "plan" or "diff"
    checks: tuple[Check, ...]

    @property
    def approved(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(check.detail for check in self.checks if not check.passed)

    def as_event(self) -> dict[str, Any]:
        """The event detail: the outcome plus every rule, passed or not."""
        return {
            "stage": self.stage,
            "approved": self.approved,
            "reasons": list(self.reasons),
            "checks": [
                {"rule": c.rule, "passed": c.passed, "detail": c.detail} for c in self.checks
            ],
        }


def plan_auto_approval(plan: Plan, rules: AutoApproveConfig) -> AutoApproval:
    """May ``plan`` go ahead without a human? Complexity, risk, hours, planned files, labels.

    Planned files are matched against the protected patterns too: a plan that announces a
    change to CI workflows would be stopped at the diff anyway, so stop it before any work.
    """
    planned = [f.path for f in plan.files]
    deleted = [f.path for f in plan.files if f.action == "delete"]
    breaking = sorted(label for label in plan.issue.labels if label.lower() in BREAKING_LABELS)
    checks = (
        _complexity_check(plan.complexity, rules),
        Check(
            "risk",
            plan.risk_level not in ("high", "critical"),
            f"risk level is {plan.risk_level} (high and critical need a human)",
        ),
        Check(
            "estimated_hours",
            plan.estimated_hours <= rules.max_estimated_hours,
            f"estimated {plan.estimated_hours:g} h (limit {rules.max_estimated_hours:g} h)",
        ),
        _blocked_files_check(planned, rules),
        _deletions_check(deleted),
        Check(
            "breaking_change",
            not breaking,
            f"labelled as a breaking change: {', '.join(breaking)}"
            if breaking
            else "not labelled as a breaking change",
        ),
    )
    return AutoApproval("plan", checks)


def diff_auto_approval(changes: Changes, rules: AutoApproveConfig) -> AutoApproval:
    """The same question on the real diff after implementation: size, touched and deleted files."""
    paths = [f.path for f in changes.files]
    deleted = [f.path for f in changes.files if f.status.upper().startswith("D")]
    lines = changes.lines_added + changes.lines_removed
    checks = (
        Check(
            "files_changed",
            len(paths) <= rules.max_files_changed,
            f"{len(paths)} files changed (limit {rules.max_files_changed})",
        ),
        Check(
            "lines_changed",
            lines <= rules.max_lines_changed,
            f"{lines} lines changed (limit {rules.max_lines_changed})",
        ),
        _blocked_files_check(paths, rules),
        _deletions_check(deleted),
    )
    return AutoApproval("diff", checks)


def _complexity_check(complexity: str, rules: AutoApproveConfig) -> Check:
    allowed = {"low": rules.low_complexity, "medium": rules.medium_complexity}
    passed = allowed.get(complexity, False)
    verb = "may" if passed else "may not"
    return Check("complexity", passed, f"complexity {complexity} {verb} be auto-approved")


def _blocked_files_check(paths: Iterable[str], rules: AutoApproveConfig) -> Check:
    patterns = (*rules.block_file_patterns, *rules.protected_file_patterns)
    hits = [f"{path} ({pattern})" for path in paths if (pattern := blocked_by(path, patterns))]
    if hits:
        return Check("blocked_files", False, "blocked files: " + ", ".join(hits))
    return Check("blocked_files", True, "no blocked file")


def _deletions_check(deleted: list[str]) -> Check:
    if deleted:
        return Check("deletions", False, "deletes files: " + ", ".join(deleted))
    return Check("deletions", True, "deletes no file")


def blocked_by(path: str, patterns: Iterable[str]) -> str | None:
    """The first pattern that ``path`` matches, or None.

    A pattern with a slash is matched against the whole path (``.github/workflows/**``); one
    without is also matched against the file name, so ``*.pem`` and ``package.json`` catch
    files in any folder. Matching ignores case: on a case-insensitive checkout ``Package.JSON``
    is the same file, and blocking too much is the safe mistake.
    """
    clean = normalise_path(path).lower()
    name = posixpath.basename(clean)
    for pattern in patterns:
        wanted = pattern.lower()
        if fnmatch.fnmatchcase(clean, wanted):
            return pattern
        if "/" not in wanted and fnmatch.fnmatchcase(name, wanted):
            return pattern
    return None


def normalise_path(path: str) -> str:
    """A repository-relative POSIX path: backslashes, ``./`` and a leading ``/`` removed."""
    text = posixpath.normpath(path.replace("\\", "/"))
    return text.lstrip("/")
