"""Analysis and planning: complexity, risk and a plan, always within the enums.

Where the levels come from, first match wins per level:
1. labels a human set: ``complexity:<level>`` and ``risk:<level>`` (also ``risk-level:<level>``);
2. the agent's structured answer, when the engine asked for one (``[engine.agent] structured``);
3. the heuristic below, deterministic so the same issue always gets the same verdict:
   - complexity: labels ``good first issue``/``docs``/``documentation``/``typo``/``chore`` -> low;
     ``security``/``breaking``/``breaking-change``/``migration`` -> high; otherwise by size: a body
     under 400 characters naming at most 2 paths -> low, under 2000 naming at most 5 -> medium,
     else high;
   - risk: ``security`` -> critical; ``breaking``/``breaking-change``/``migration`` or a mentioned
     path that looks sensitive (lock files, CI workflows, secrets, migrations) -> high; docs-like
     labels -> low; otherwise low for low complexity and medium for the rest.
Plans name repository-relative paths only: an absolute path loses its leading slash, and a path
that climbs out of the repository (``..``) makes the plan invalid (escalated, never guessed).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tamma_trio.errors import EngineError
from tamma_trio.step_records import LEVELS, Analysis, Issue, Level, Plan, PlannedFile

LOW_LABELS = frozenset({"good first issue", "docs", "documentation", "typo", "chore"})
HIGH_LABELS = frozenset({"security", "breaking", "breaking-change", "migration"})
SENSITIVE_PATH = re.compile(
    r"(^|/)(\.github/workflows/|\.env|secrets?/|migrations?/)|\.(pem|key)$|"
    r"(^|/)(package(-lock)?\.json|yarn\.lock|pnpm-lock\.yaml|poetry\.lock|uv\.lock|Pipfile\.lock)$"
)
PATH_TOKEN = re.compile(
    r"(?<![\w/.:@-])((?:[\w.-]+/)*[\w-][\w.-]*\.[A-Za-z][A-Za-z0-9]{0,9})(?![\w/])"
)
REFERENCE = re.compile(r"(?<![\w&])#(\d+)\b")
HOURS_BY_COMPLEXITY: Mapping[Level, float] = {"low": 1, "medium": 4, "high": 16, "critical": 40}


def level_from_labels(labels: Iterable[str], *prefixes: str) -> Level | None:
    for label in labels:
        name, _, value = label.lower().partition(":")
        if name.strip() in prefixes:
            level = clamp_level(value)
            if level is not None:
                return level
    return None


def clamp_level(value: Any) -> Level | None:
    """``value`` as a Level when it names one ("High " -> "high"), else None."""
    text = str(value).strip().lower() if value is not None else ""
    for level in LEVELS:
        if text == level:
            return level
    return None


def normalise_path(path: str) -> str:
    """A repository-relative POSIX path; ValueError for one outside the repository."""
    text = path.strip().replace("\\", "/").lstrip("/")
    clean = posixpath.normpath(text) if text else ""
    if not clean or clean == "." or clean == ".." or clean.startswith("../"):
        raise ValueError(f"path {path!r} is outside the repository")
    return clean


def mentioned_paths(texts: Sequence[str]) -> tuple[str, ...]:
    """File paths named in the issue text, normalised, in first-seen order."""
    found: dict[str, None] = {}
    for text in texts:
        for match in PATH_TOKEN.finditer(text):
            token = match.group(1).rstrip(".")
            stem = token.rsplit("/", 1)[-1].split(".", 1)[0]
            if "/" not in token and len(stem) < 2:  # "e.g", "i.e"
                continue
            try:
                found.setdefault(normalise_path(token), None)
            except ValueError:
                continue
    return tuple(found)


def references(texts: Sequence[str], own_number: int) -> tuple[int, ...]:
    numbers = {int(m) for text in texts for m in REFERENCE.findall(text)}
    return tuple(sorted(numbers - {own_number}))


def heuristic_levels(issue: Issue, paths: Sequence[str]) -> tuple[Level, Level]:
    labels = {label.lower() for label in issue.labels}
    if labels & LOW_LABELS:
        complexity: Level = "low"
    elif labels & HIGH_LABELS:
        complexity = "high"
    elif len(issue.body) < 400 and len(paths) <= 2:
        complexity = "low"
    elif len(issue.body) < 2000 and len(paths) <= 5:
        complexity = "medium"
    else:
        complexity = "high"
    return complexity, heuristic_risk(labels, paths, complexity)


def heuristic_risk(labels: set[str], paths: Sequence[str], complexity: Level) -> Level:
    if "security" in labels:
        return "critical"
    if labels & (HIGH_LABELS - {"security"}) or any(SENSITIVE_PATH.search(p) for p in paths):
        return "high"
    if labels & LOW_LABELS or complexity == "low":
        return "low"
    return "medium"


def assess_issue(
    issue: Issue, comments: Sequence[str], structured: Mapping[str, Any] | None = None
) -> Analysis:
    """Complexity and risk by labels, then the agent's answer, then the heuristic."""
    texts = [issue.title, issue.body, *comments]
    paths = mentioned_paths(texts)
    guess = heuristic_levels(issue, paths)
    answer = structured or {}
    picks = [
        _pick(level_from_labels(issue.labels, "complexity"), answer.get("complexity"), guess[0]),
        _pick(
            level_from_labels(issue.labels, "risk", "risk-level"),
            answer.get("riskLevel", answer.get("risk_level")),
            guess[1],
        ),
    ]
    sources = {source for _, source in picks}
    summary = str(answer.get("summary") or "").strip() or _summary(issue)
    return Analysis(
        issue=issue,
        complexity=picks[0][0],
        risk_level=picks[1][0],
        summary=summary[:2000],
        mentioned_paths=paths,
        source=sources.pop() if len(sources) == 1 else "+".join(s for _, s in picks),
        references=references(texts, issue.number),
    )


def _pick(from_labels: Level | None, from_agent: Any, heuristic: Level) -> tuple[Level, str]:
    if from_labels is not None:
        return from_labels, "labels"
    agent_level = clamp_level(from_agent)
    if agent_level is not None:
        return agent_level, "agent"
    return heuristic, "heuristic"


def _summary(issue: Issue) -> str:
    first = next((line.strip() for line in issue.body.splitlines() if line.strip()), "")
    return f"{issue.title}: {first}" if first else issue.title


def draft_plan(analysis: Analysis, structured: Mapping[str, Any] | None = None) -> Plan:
    """The plan: the agent's structured plan when given (validated), else one from the analysis.

    Raises EngineError(invalid_plan, not retryable) when the agent's plan names a path outside
    the repository or is not the expected shape.
    """
    issue = analysis.issue
    answer = structured or {}
    try:
        files = _planned_files(answer.get("files", answer.get("fileChanges")))
        hours = _hours(answer.get("estimatedHours", answer.get("estimated_hours")))
    except ValueError as exc:
        raise EngineError(f"invalid plan: {exc}", code="invalid_plan", retryable=False) from None
    if not files:
        files = tuple(PlannedFile(path=path) for path in analysis.mentioned_paths)
    risks = answer.get("risks")
    return Plan(
        issue=issue,
        summary=str(answer.get("summary") or f"Resolve #{issue.number}: {issue.title}")[:2000],
        approach=str(answer.get("approach") or _default_approach(files))[:4000],
        files=files,
        estimated_hours=hours if hours is not None else HOURS_BY_COMPLEXITY[analysis.complexity],
        complexity=analysis.complexity,
        risk_level=analysis.risk_level,
        testing_strategy=str(answer.get("testingStrategy") or "Run the configured test command."),
        risks=tuple(str(r) for r in risks) if isinstance(risks, list) else (),
    )


def _planned_files(raw: Any) -> tuple[PlannedFile, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError("files must be a list")
    planned: dict[str, PlannedFile] = {}
    for entry in raw:
        item = entry if isinstance(entry, dict) else {"path": entry}
        path = normalise_path(str(item.get("path", item.get("filePath", ""))))
        action = str(item.get("action", "modify")).lower()
        if action not in ("create", "modify", "delete"):
            raise ValueError(f"unknown action {action!r} for {path}")
        planned[path] = PlannedFile.model_validate({"path": path, "action": action})
    return tuple(planned.values())


def _hours(raw: Any) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise ValueError(f"estimatedHours must be a number >= 0, got {raw!r}")
    return float(raw)


def _default_approach(files: Sequence[PlannedFile]) -> str:
    where = ", ".join(f.path for f in files) if files else "the files the issue concerns"
    return (
        f"Let the coding agent change {where} as the issue describes; the engine then commits, "
        "runs the tests and opens a pull request."
    )
