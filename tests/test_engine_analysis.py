"""Analysis and planning rules: labels first, then the agent's answer, then the heuristic;
always within the enums; plan paths normalised; bad plans refused; engine options validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tamma_trio.engine.analysis import assess_issue, draft_plan, mentioned_paths, normalise_path
from tamma_trio.engine.workflow_options import parse_options
from tamma_trio.errors import ConfigError, EngineError
from tamma_trio.step_records import Issue


def issue(body: str = "", labels: tuple[str, ...] = (), title: str = "Title") -> Issue:
    return Issue(repository="acme/demo", number=5, title=title, body=body, labels=labels)


@pytest.mark.parametrize(
    ("labels", "body", "answer", "expected"),
    [
        (
            ("complexity:low", "risk:high"),
            "x" * 5000,
            {"complexity": "high"},
            ("low", "high", "labels"),
        ),
        (("Complexity: Medium",), "", {}, ("medium", "low", "labels+heuristic")),
        ((), "", {"complexity": "HIGH", "riskLevel": "critical"}, ("high", "critical", "agent")),
        ((), "", {"complexity": "enormous", "risk_level": 7}, ("low", "low", "heuristic")),
        (("complexity:galactic",), "", {}, ("low", "low", "heuristic")),
        (("docs",), "x" * 5000, {}, ("low", "low", "heuristic")),
        (("security",), "", {}, ("high", "critical", "heuristic")),
        (("migration",), "", {}, ("high", "high", "heuristic")),
        ((), "Touch `package.json` please", {}, ("low", "high", "heuristic")),
        ((), "y" * 1000, {}, ("medium", "medium", "heuristic")),
        ((), "z" * 3000, {}, ("high", "medium", "heuristic")),
    ],
)
def test_levels_by_labels_then_agent_then_heuristic(
    labels: tuple[str, ...], body: str, answer: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    result = assess_issue(issue(body, labels), [], answer)
    assert (result.complexity, result.risk_level, result.source) == expected


def test_analysis_collects_paths_and_references_from_body_and_comments() -> None:
    result = assess_issue(
        issue("See #12 and src/app.py, e.g. the `README.md`; not 1.2.3 nor /etc/../../x.py"),
        ["Also docs/guide.md (like #12, #40)"],
    )
    assert result.mentioned_paths == ("src/app.py", "README.md", "docs/guide.md")
    assert result.references == (12, 40)
    assert result.summary.startswith("Title: See #12")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("/src/a.py", "src/a.py"), ("./a/../b.py", "b.py"), ("a\\b.py", "a/b.py")],
)
def test_normalise_path(raw: str, clean: str) -> None:
    assert normalise_path(raw) == clean


@pytest.mark.parametrize("raw", ["../x.py", "a/../../x.py", "", "/", ".."])
def test_normalise_path_refuses_paths_outside_the_repository(raw: str) -> None:
    with pytest.raises(ValueError, match="outside the repository"):
        normalise_path(raw)


def test_mentioned_paths_skip_what_escapes() -> None:
    assert mentioned_paths(["fix ../secret.txt and ok.txt"]) == ("ok.txt",)


def test_heuristic_plan_from_the_analysis() -> None:
    result = draft_plan(assess_issue(issue("Change `package.json`", ("complexity:low",)), []))
    assert [f.path for f in result.files] == ["package.json"]
    assert result.estimated_hours == 1 and result.complexity == "low"
    assert result.summary == "Resolve #5: Title"


def test_agent_plan_is_validated_and_normalised() -> None:
    answer = {
        "summary": "Do it",
        "files": [{"filePath": "/src/a.py", "action": "Create"}, "src/b.py"],
        "estimatedHours": 2.5,
        "risks": ["none"],
    }
    result = draft_plan(assess_issue(issue(), []), answer)
    assert [(f.path, f.action) for f in result.files] == [
        ("src/a.py", "create"),
        ("src/b.py", "modify"),
    ]
    assert result.estimated_hours == 2.5 and result.risks == ("none",) and result.summary == "Do it"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"files": [{"path": "../../etc/passwd"}]}, "outside the repository"),
        ({"files": "src/a.py"}, "files must be a list"),
        ({"files": [{"path": "a.py", "action": "rename"}]}, "unknown action"),
        ({"estimatedHours": -1}, "estimatedHours"),
        ({"estimatedHours": "two"}, "estimatedHours"),
    ],
)
def test_invalid_agent_plans_are_refused(answer: dict[str, Any], message: str) -> None:
    with pytest.raises(EngineError, match=message) as caught:
        draft_plan(assess_issue(issue(), []), answer)
    assert caught.value.code == "invalid_plan" and not caught.value.retryable


def test_options_defaults_and_resolution(tmp_path: Path) -> None:
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "agent.py").write_text("")
    options = parse_options({}).resolved(tmp_path)
    assert options.forge.kind == "local" and options.forge.required_approvals == 0
    assert options.forge.origin == tmp_path / "origin.git"
    assert options.agent.command == ("python", str(tmp_path / "examples/agent.py"), "{prompt_file}")
    assert options.forge_database(None) == tmp_path / "workspaces" / "local__project" / "forge.db"
    assert options.forge_database(tmp_path / "tamma.db") == tmp_path / "tamma.forge.db"
    own = parse_options({"forge": {"database": "f.db"}}).resolved(tmp_path)
    assert own.forge_database(tmp_path / "tamma.db") == tmp_path / "f.db"
    # An older install could name the task store's file itself: the forge never writes it.
    shared = parse_options({"forge": {"database": "tamma.db"}}).resolved(tmp_path)
    assert shared.forge_database(tmp_path / "tamma.db") == tmp_path / "tamma.forge.db"


@pytest.mark.parametrize(
    ("table", "where", "problem"),
    [
        ({"workspace": "x"}, "engine.workspace", "unknown key"),
        ({"forge": {"kind": "gitea"}}, "engine.forge.kind", "'local', 'github'"),
        ({"forge": {"kind": "github"}}, "engine.forge.repositories", "Field required"),
        (
            {"forge": {"kind": "github", "repositories": ["a/b"]}},
            "engine.forge",
            "either token, or app_id and private_key_path",
        ),
        (
            {"forge": {"kind": "github", "repositories": ["a/b"], "app_id": 3}},
            "engine.forge",
            "needs both app_id and private_key_path",
        ),
        (
            {"forge": {"kind": "github", "repositories": ["nope"]}},
            "engine.forge.repositories.0",
            "owner/name",
        ),
        ({"forge": {"repository": "no-slash"}}, "engine.forge.repository", "must be owner/name"),
        ({"agent": {"command": "gpt"}}, "engine.agent.command", "unknown agent preset"),
        ({"agent": {"command": ["x", "{nope}"]}}, "engine.agent.command", "unknown placeholder"),
        ({"agent": {"env": ["GITHUB_TOKEN"]}}, "engine.agent.env", "never get the forge token"),
        ({"agent": {"timeout": 0}}, "engine.agent.timeout", "greater than 0"),
        ({"tests": {"command": []}}, "engine.tests.command", "at least 1"),
    ],
)
def test_bad_engine_options_name_the_key(table: dict[str, Any], where: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(table)
    assert any(
        path == where and problem in message for path, _, message in caught.value.problems
    ), caught.value.problems
