"""Pure decisions: backoff schedule, retryable errors, and every auto-approval rule."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tamma_trio.config import AutoApproveConfig
from tamma_trio.errors import EngineError, ValidationError
from tamma_trio.policy import (
    MAX_DEFERRALS,
    Failure,
    blocked_by,
    classify,
    deferral_time,
    diff_auto_approval,
    plan_auto_approval,
    retries_left,
    retry_delay,
)
from tamma_trio.step_records import Branch, ChangedFile, Changes, Issue, Plan, PlannedFile

RULES = AutoApproveConfig()

# --- backoff --------------------------------------------------------------------------------


def test_backoff_doubles_from_retry_delay_up_to_the_cap() -> None:
    schedule = [retry_delay(n, 5, 300, rng=lambda: 0.0) for n in range(8)]
    assert schedule == [5, 10, 20, 40, 80, 160, 300, 300]


def test_jitter_only_shortens_the_wait_and_by_at_most_its_fraction() -> None:
    assert retry_delay(2, 5, 300, rng=lambda: 0.999_999) == pytest.approx(20 * 0.8, rel=1e-5)
    assert retry_delay(2, 5, 300, rng=lambda: 0.5) == pytest.approx(18)
    assert retry_delay(20, 5, 300, rng=lambda: 0.0) == 300  # the cap is never exceeded


def test_default_jitter_spreads_retries_within_bounds() -> None:
    delays = {retry_delay(1, 10, 300) for _ in range(50)}
    assert len(delays) > 1
    assert all(16 <= delay <= 20 for delay in delays)


def test_huge_retry_numbers_do_not_overflow() -> None:
    assert retry_delay(10_000, 5, 300, rng=lambda: 0.0) == 300


def test_negative_retry_is_refused() -> None:
    with pytest.raises(ValueError, match="retry must be >= 0"):
        retry_delay(-1, 5, 300)


@pytest.mark.parametrize(
    ("attempts", "max_retries", "expected"),
    [(1, 3, True), (3, 3, True), (4, 3, False), (1, 0, False), (5, 3, False)],
)
def test_max_three_retries_means_four_attempts(
    attempts: int, max_retries: int, expected: bool
) -> None:
    assert retries_left(attempts, max_retries) is expected


LIMITED = Failure("rate_limited", "rate limit", retryable=True, retry_at=5000.0)


@pytest.mark.parametrize(
    ("failure", "deferrals", "now", "expected"),
    [
        (LIMITED, 0, 1000.0, 5000.0),  # deferred to the reset
        (LIMITED, MAX_DEFERRALS - 1, 1000.0, 5000.0),  # the last deferral allowed
        (LIMITED, MAX_DEFERRALS, 1000.0, None),  # deferrals spent: a retry like any other
        (LIMITED, 0, 6000.0, 6000.0),  # the reset already passed: run now
        (Failure("forge_down", "down", retryable=True), 0, 1000.0, None),  # no reset named
        (Failure("bad", "no", retryable=False, retry_at=5000.0), 0, 1000.0, None),
    ],
)
def test_only_a_named_reset_defers_and_only_so_often(
    failure: Failure, deferrals: int, now: float, expected: float | None
) -> None:
    assert deferral_time(failure, deferrals, now) == expected


@pytest.mark.parametrize(
    ("exc", "code", "retryable"),
    [
        (EngineError("forge down", code="forge_unavailable"), "forge_unavailable", True),
        (EngineError("tests failed", code="tests_failed", retryable=False), "tests_failed", False),
        (trio.TooSlowError(), "task_timeout", True),
        (ValidationError("payload has no issue"), "invalid_input", False),
        (KeyError("issue"), "internal_error", True),
    ],
)
def test_classify(exc: BaseException, code: str, retryable: bool) -> None:
    failure = classify(exc)
    assert (failure.code, failure.retryable) == (code, retryable)
    assert failure.message


def test_classify_clips_long_messages() -> None:
    failure = classify(EngineError("x" * 5000))
    assert len(failure.message) == 500
    assert failure.message.endswith("...")


# --- the plan -------------------------------------------------------------------------------

ISSUE = Issue(repository="acme/widgets", number=7, title="Fix the widget")


def make_plan(**changes: Any) -> Plan:
    fields: dict[str, Any] = {
        "issue": ISSUE,
        "summary": "fix it",
        "files": (PlannedFile(path="src/widget.py"),),
        "estimated_hours": 2,
        "complexity": "low",
        "risk_level": "low",
    }
    fields.update(changes)
    return Plan(**fields)


def test_a_small_low_risk_plan_is_approved_with_every_rule_recorded() -> None:
    decision = plan_auto_approval(make_plan(), RULES)
    assert decision.approved
    assert decision.reasons == ()
    event = decision.as_event()
    assert event["stage"] == "plan" and event["approved"] is True
    assert [check["rule"] for check in event["checks"]] == [
        "complexity",
        "risk",
        "estimated_hours",
        "blocked_files",
        "deletions",
        "breaking_change",
    ]


PLAN_CASES = [
    # (name, plan changes, rules changes, failing rule, reason fragment)
    ("medium complexity by default", {"complexity": "medium"}, {}, "complexity", "medium"),
    ("high complexity", {"complexity": "high"}, {"medium_complexity": True}, "complexity", "high"),
    ("critical complexity", {"complexity": "critical"}, {}, "complexity", "critical"),
    ("low complexity switched off", {}, {"low_complexity": False}, "complexity", "low"),
    ("high risk", {"risk_level": "high"}, {}, "risk", "risk level is high"),
    ("critical risk", {"risk_level": "critical"}, {}, "risk", "critical"),
    ("too many hours", {"estimated_hours": 9}, {}, "estimated_hours", "estimated 9 h"),
    (
        "hours over a custom limit",
        {"estimated_hours": 3},
        {"max_estimated_hours": 2},
        "estimated_hours",
        "limit 2 h",
    ),
    (
        "package.json",
        {"files": (PlannedFile(path="package.json"),)},
        {},
        "blocked_files",
        "package.json",
    ),
    (
        "a lock file in a subfolder",
        {"files": (PlannedFile(path="web/yarn.lock"),)},
        {},
        "blocked_files",
        "web/yarn.lock (yarn.lock)",
    ),
    (
        "a CI workflow (protected)",
        {"files": (PlannedFile(path=".github/workflows/ci.yml"),)},
        {},
        "blocked_files",
        ".github/workflows/**",
    ),
    (
        "a custom glob",
        {"files": (PlannedFile(path="db/migrations/0001.sql"),)},
        {"block_file_patterns": ("db/migrations/*",)},
        "blocked_files",
        "db/migrations/*",
    ),
    (
        "a deletion",
        {"files": (PlannedFile(path="src/old.py", action="delete"),)},
        {},
        "deletions",
        "src/old.py",
    ),
    (
        "a breaking change label",
        {"issue": ISSUE.model_copy(update={"labels": ("Breaking-Change",)})},
        {},
        "breaking_change",
        "Breaking-Change",
    ),
]


@pytest.mark.parametrize(
    ("plan_changes", "rule_changes", "rule", "fragment"),
    [case[1:] for case in PLAN_CASES],
    ids=[case[0] for case in PLAN_CASES],
)
def test_each_plan_rule_escalates_with_its_reason(
    plan_changes: dict[str, Any], rule_changes: dict[str, Any], rule: str, fragment: str
) -> None:
    rules = RULES.model_copy(update=rule_changes)
    decision = plan_auto_approval(make_plan(**plan_changes), rules)
    assert not decision.approved
    failed = [check for check in decision.checks if not check.passed]
    assert [check.rule for check in failed] == [rule]
    assert fragment in decision.reasons[0]


def test_medium_complexity_passes_when_enabled() -> None:
    rules = RULES.model_copy(update={"medium_complexity": True})
    assert plan_auto_approval(make_plan(complexity="medium"), rules).approved


def test_hours_at_the_limit_pass() -> None:
    assert plan_auto_approval(make_plan(estimated_hours=8), RULES).approved


def test_every_failing_rule_is_reported_at_once() -> None:
    plan = make_plan(
        complexity="high",
        risk_level="critical",
        estimated_hours=40,
        files=(PlannedFile(path="package.json", action="delete"),),
    )
    decision = plan_auto_approval(plan, RULES)
    assert len(decision.reasons) == 5
    assert not decision.as_event()["approved"]


# --- the diff -------------------------------------------------------------------------------

BRANCH = Branch(
    repository="acme/widgets", name="tamma/7-fix", base="main", base_sha="0" * 40, workdir="/w"
)


def make_changes(files: tuple[ChangedFile, ...], added: int = 10, removed: int = 2) -> Changes:
    return Changes(
        branch=BRANCH, head_sha="1" * 40, files=files, lines_added=added, lines_removed=removed
    )


def test_a_small_diff_is_approved() -> None:
    decision = diff_auto_approval(
        make_changes((ChangedFile(path="src/widget.py", status="M"),)), RULES
    )
    assert decision.approved and decision.stage == "diff"


DIFF_CASES = [
    (
        "too many files",
        tuple(ChangedFile(path=f"src/f{n}.py", status="M") for n in range(21)),
        10,
        "files_changed",
        "21 files changed (limit 20)",
    ),
    (
        "too many lines",
        (ChangedFile(path="src/a.py", status="M"),),
        999,
        "lines_changed",
        "1001 lines changed (limit 1000)",
    ),
    (
        "a private key",
        (ChangedFile(path="deploy/server.pem", status="A"),),
        10,
        "blocked_files",
        "*.pem",
    ),
    (
        "an env file",
        (ChangedFile(path="config/.env.production", status="A"),),
        10,
        "blocked_files",
        ".env*",
    ),
    (
        "secrets folder",
        (ChangedFile(path="secrets/api.txt", status="M"),),
        10,
        "blocked_files",
        "secrets/**",
    ),
    ("a lock file", (ChangedFile(path="uv.lock", status="M"),), 10, "blocked_files", "uv.lock"),
    ("a deleted file", (ChangedFile(path="src/a.py", status="D"),), 10, "deletions", "src/a.py"),
]


@pytest.mark.parametrize(
    ("files", "added", "rule", "fragment"),
    [case[1:] for case in DIFF_CASES],
    ids=[case[0] for case in DIFF_CASES],
)
def test_each_diff_rule_escalates_with_its_reason(
    files: tuple[ChangedFile, ...], added: int, rule: str, fragment: str
) -> None:
    decision = diff_auto_approval(make_changes(files, added=added), RULES)
    failed = [check.rule for check in decision.checks if not check.passed]
    assert failed == [rule]
    assert fragment in decision.reasons[0]


def test_line_limit_counts_added_and_removed() -> None:
    files = (ChangedFile(path="src/a.py", status="M"),)
    assert diff_auto_approval(make_changes(files, added=500, removed=500), RULES).approved
    assert not diff_auto_approval(make_changes(files, added=500, removed=501), RULES).approved


# --- globs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "patterns", "expected"),
    [
        ("package.json", ("package.json",), "package.json"),
        ("apps/web/package.json", ("package.json",), "package.json"),
        ("./package.json", ("package.json",), "package.json"),
        ("/package.json", ("package.json",), "package.json"),
        ("Package.JSON", ("package.json",), "package.json"),
        ("src\\keys\\id.key", ("*.key",), "*.key"),
        (".github/workflows/release.yml", (".github/workflows/**",), ".github/workflows/**"),
        ("docs/.github/workflows/x.yml", (".github/workflows/**",), None),
        ("src/package.json.md", ("package.json",), None),
        ("src/app.py", ("*.pem", "secrets/**"), None),
    ],
)
def test_blocked_by(path: str, patterns: tuple[str, ...], expected: str | None) -> None:
    assert blocked_by(path, patterns) == expected
