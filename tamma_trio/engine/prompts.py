"""The text the engine writes: agent prompts, pull request bodies and forge comments.

Comments the engine may post more than once across a resumed task carry an HTML marker, so the
engine can see it already posted them and a restart never repeats one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tamma_trio.step_records import Analysis, Branch, Changes, Issue, Plan, PullRequest, TestResult

CLAIM_MARKER = "<!-- tamma-trio:claim -->"
ESCALATION_MARKER = "<!-- tamma-trio:escalation -->"


def pr_marker(number: int) -> str:
    return f"<!-- tamma-trio:pr:{number} -->"


def merged_marker(number: int) -> str:
    return f"<!-- tamma-trio:merged:{number} -->"


def claim_comment(bot: str) -> str:
    return f"{CLAIM_MARKER}\n{bot} is working on this issue. Progress is reported here."


def _issue_section(issue: Issue, comments: Sequence[str]) -> list[str]:
    lines = [f"Issue: #{issue.number}", f"Title: {issue.title}", f"Repository: {issue.repository}"]
    if issue.labels:
        lines.append(f"Labels: {', '.join(issue.labels)}")
    lines += ["", "## Issue description", "", issue.body.strip() or "(no description)"]
    if comments:
        lines += ["", "## Discussion", ""]
        lines += [f"- {comment.strip()}" for comment in comments[-20:]]
    return lines


def analyze_prompt(issue: Issue, comments: Sequence[str]) -> str:
    schema = {
        "complexity": "low|medium|high|critical",
        "riskLevel": "low|medium|high|critical",
        "summary": "one paragraph",
    }
    return "\n".join(
        [
            "# Analyse this issue; do not change any file.",
            "",
            *_issue_section(issue, comments),
            "",
            "Answer with one JSON object and nothing else, shaped like:",
            json.dumps(schema),
        ]
    )


def plan_prompt(analysis: Analysis, comments: Sequence[str]) -> str:
    schema = {
        "summary": "...",
        "approach": "...",
        "files": [{"path": "relative/path", "action": "create|modify|delete"}],
        "estimatedHours": 1.5,
        "testingStrategy": "...",
        "risks": ["..."],
    }
    return "\n".join(
        [
            "# Plan the change for this issue; do not change any file.",
            "",
            *_issue_section(analysis.issue, comments),
            "",
            f"Assessed complexity: {analysis.complexity}; risk: {analysis.risk_level}.",
            "",
            "Answer with one JSON object and nothing else, shaped like:",
            json.dumps(schema),
        ]
    )


def implement_prompt(
    plan: Plan, branch: Branch, test_command: Sequence[str], comments: Sequence[str]
) -> str:
    files = [f"- {f.action} `{f.path}`" for f in plan.files] or ["- (not planned in advance)"]
    return "\n".join(
        [
            f"# Resolve issue #{plan.issue.number}: {plan.issue.title}",
            "",
            *_issue_section(plan.issue, comments),
            "",
            "## Plan",
            "",
            f"Summary: {plan.summary}",
            f"Approach: {plan.approach}",
            "",
            "Files:",
            *files,
            "",
            "## Rules",
            "",
            f"- Work only in the current directory: a git worktree on branch `{branch.name}`.",
            "- Edit files only. Do not commit, push or switch branches: tamma-trio commits your",
            "  changes, runs the tests and opens the pull request.",
            f"- The tests run with: `{' '.join(test_command)}`. Keep them passing; add tests for",
            "  new behaviour.",
        ]
    )


def commit_subject(plan: Plan) -> str:
    return f"{plan.issue.title} (#{plan.issue.number})"[:200]


def pr_body(plan: Plan, changes: Changes, tests: TestResult) -> str:
    files = "\n".join(f"- `{f.path}` ({f.status}, +{f.added}/-{f.removed})" for f in changes.files)
    return "\n".join(
        [
            f"Closes #{plan.issue.number}",
            "",
            "## Summary",
            "",
            plan.summary,
            "",
            "## Approach",
            "",
            plan.approach,
            "",
            f"## Changes (+{changes.lines_added}/-{changes.lines_removed})",
            "",
            files,
            "",
            "## Tests",
            "",
            f"`{' '.join(tests.command)}` passed in {tests.duration:.1f} s.",
            "",
            f"Complexity {plan.complexity}, risk {plan.risk_level}, "
            f"estimated {plan.estimated_hours:g} h. Opened by tamma-trio.",
        ]
    )


def pr_opened_comment(pr: PullRequest) -> str:
    return f"{pr_marker(pr.number)}\nOpened {pr.name}: {pr.url}"


def merge_message(pr: PullRequest) -> str:
    """The merge commit's message, in each forge's own convention."""
    if pr.reference.startswith("!"):
        return f"Merge branch '{pr.head_branch}' into '{pr.base}'\n\nSee {pr.name}: {pr.url}"
    return f"Merge pull request #{pr.number} from {pr.head_branch}\n\n{pr.url}"


def merged_comment(pr: PullRequest, sha: str | None) -> str:
    where = f" as {sha[:12]}" if sha else ""
    return f"{merged_marker(pr.number)}\n{pr.name[0].upper()}{pr.name[1:]} was merged{where}."


def escalation_comment(reason: str, details: Mapping[str, Any]) -> str:
    lines = [ESCALATION_MARKER, "**tamma-trio needs a human.**", "", f"Reason: {reason}"]
    short = {k: v for k, v in details.items() if "\n" not in str(v) and len(str(v)) <= 200}
    if short:
        lines += ["", *(f"- {key}: {value}" for key, value in short.items())]
    for key, value in details.items():
        if key not in short:
            lines += ["", f"{key}:", "```", str(value)[-3000:].replace("```", "'''"), "```"]
    return "\n".join([*lines, "", _way_out(details)])


def _way_out(details: Mapping[str, Any]) -> str:
    """The commands that move an escalation forward (an approval escalation carries a stage)."""
    if "stage" in details:
        return (
            "Comment `/tamma approve` to run it with this plan approved "
            "(or `tamma-trio tasks approve ID`), or `/tamma cancel` to drop it."
        )
    return "Comment `/tamma retry` to run it again once the cause is fixed, or `/tamma cancel`."
