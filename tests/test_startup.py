"""Start-up: the pre-flight checks (`serve` and `config check` stop with one line, exit 2) and the
start-up block a real `tamma-trio serve` logs, in the console and the JSON format."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tamma_trio.cli import main
from tamma_trio.engine.forge.seed import init_origin
from tamma_trio.engine.preflight import preflight
from tamma_trio.engine.workflow_options import parse_options
from tests.test_lifecycle import DEADLINE, REPO_ROOT, Daemon, wait_until, write_config
from tests.test_lifecycle import daemons as daemons  # the fixture: every daemon is stopped
from tests.workflow_helpers import EXAMPLE_AGENT, UNITTEST


def workflow_options(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """A workflow engine table that passes every check, with ``changes`` applied."""
    if not (tmp_path / "origin.git").exists():
        init_origin(tmp_path / "origin.git")
    options: dict[str, Any] = {
        "workspace_dir": str(tmp_path / "workspaces"),
        "forge": {"origin": str(tmp_path / "origin.git"), "repository": "local/demo"},
        "agent": {"command": [sys.executable, str(EXAMPLE_AGENT), "{prompt_file}"]},
        "tests": {"command": list(UNITTEST)},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            options[section] = {**options[section], name: value}
        else:
            options[section] = value
    return options


def problems_of(tmp_path: Path, **changes: Any) -> list[str]:
    return preflight(parse_options(workflow_options(tmp_path, **changes)).resolved(tmp_path))


def test_a_sound_setup_passes(tmp_path: Path) -> None:
    assert problems_of(tmp_path) == []


def test_an_agent_missing_from_path_is_named_with_its_key(tmp_path: Path) -> None:
    assert problems_of(tmp_path, agent__command=["no-such-agent-4f2a", "{prompt}"]) == [
        "engine.agent.command: 'no-such-agent-4f2a' is not on PATH"
    ]


def test_a_preset_agent_that_is_not_installed_is_named(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, agent__command="aider")
    assert problems == ["engine.agent.command: 'aider' is not on PATH"]


def test_a_test_command_that_is_missing_or_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "run-tests.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert problems_of(tmp_path, tests__command=[str(script)]) == [
        f"engine.tests.command: {script} is not executable"
    ]
    missing = tmp_path / "nowhere" / "pytest"
    assert problems_of(tmp_path, tests__command=[str(missing)]) == [
        f"engine.tests.command: {missing} does not exist"
    ]


def test_an_origin_that_does_not_answer(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    problems = problems_of(tmp_path, forge__origin=str(empty), forge__repository="local/demo")
    assert len(problems) == 1
    assert problems[0].startswith(f"engine.forge.origin: {empty} does not answer (")


def test_a_workspace_below_a_file_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert problems_of(tmp_path, workspace_dir=str(blocker / "workspaces")) == [
        f"engine.workspace_dir: {blocker} is not a directory"
    ]


def write_workflow_config(tmp_path: Path, **changes: Any) -> Path:
    options = workflow_options(tmp_path, **changes)
    lines = [
        "[service.queue.sqlite]",
        f"path = {json.dumps(str(tmp_path / 'tamma.db'))}",
        "[service.health_check]",
        "port = 0",
        "[service.metrics]",
        "port = 0",
        "[engine]",
        'name = "workflow"',
        f"workspace_dir = {json.dumps(options['workspace_dir'])}",
    ]
    for section in ("forge", "agent", "tests"):
        lines.append(f"[engine.{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in options[section].items()]
    path = tmp_path / "tamma.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_serve_stops_at_a_failing_check_with_one_line_and_exit_2(tmp_path: Path) -> None:
    config = write_workflow_config(tmp_path, agent__command=["no-such-agent-4f2a"])
    done = subprocess.run(
        [sys.executable, "-m", "tamma_trio", "serve", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: pre-flight: engine.agent.command: 'no-such-agent-4f2a' is not on PATH"
    ]
    assert done.stdout == ""
    assert not (tmp_path / "tamma.db").exists()  # stopped before opening anything


def test_config_check_runs_the_same_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_workflow_config(tmp_path)
    assert main(["config", "check", "--config", str(config)]) == 0
    (tmp_path / "origin.git" / "HEAD").unlink()  # no longer a repository
    capsys.readouterr()
    assert main(["config", "check", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: pre-flight: engine.forge.origin: ")


# --- the start-up block ---------------------------------------------------------------------


def test_the_startup_block_says_what_runs_where(tmp_path: Path, daemons: list[Daemon]) -> None:
    config = write_workflow_config(tmp_path)
    env = {**os.environ, "TAMMA_SERVICE__MAX_RETRIES": "2"}
    daemon = Daemon(config, env=env).start()
    daemons.append(daemon)
    url = daemon.wait_listening()
    block = wait_until(lambda: _startup_lines(daemon.err.read_text()), "the start-up block")
    assert block[0].startswith("tamma-trio 0.1.0 (pid ")
    assert block[1] == f"config: {config}; environment overrides: TAMMA_SERVICE__MAX_RETRIES"
    assert block[2] == f"database: {tmp_path / 'tamma.db'} (sqlite, WAL, synchronous=FULL)"
    text = "\n".join(block)
    assert f"forge: local, origin {tmp_path / 'origin.git'}, repository local/demo" in text
    assert f"agent: {sys.executable} {EXAMPLE_AGENT} {{prompt_file}}" in text
    assert "api: no token set: changes accepted from loopback clients only" in text
    assert block[-1] == f"listening health={url} metrics={url}"
    daemon.signal(15)
    assert daemon.wait_exit() == 0


def _startup_lines(stderr: str) -> list[str] | None:
    marker = " tamma_trio.startup: "
    lines = [line.split(marker, 1)[1] for line in stderr.splitlines() if marker in line]
    return lines if lines and lines[-1].startswith("listening ") else None


def test_json_format_keeps_every_line_json_the_listening_line_included(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    config = write_config(tmp_path, {})
    config.write_text(config.read_text() + '[service.api]\ntoken = "s3cret-token-value"\n')
    daemon = Daemon(config, args=("--log-format", "json")).start()
    daemons.append(daemon)
    first = wait_until(lambda: daemon.out.read_text().strip(), "the listening line")
    listening = json.loads(first)
    assert listening["message"].startswith("listening health=")
    url = listening["urls"]["health"]
    assert listening["urls"] == {"health": url, "metrics": url}
    daemon.signal(15)
    assert daemon.wait_exit() == 0
    records = [json.loads(line) for line in daemon.err.read_text().splitlines()]
    startup = [r["message"] for r in records if r["logger"] == "tamma_trio.startup"]
    assert startup[0].startswith("tamma-trio ") and startup[-1] == listening["message"]
    assert "api: bearer token required for changes" in startup
    assert "engine: tests.fake_engine:create" in startup
    assert "s3cret-token-value" not in daemon.err.read_text() + daemon.out.read_text()
    assert [json.loads(line) for line in daemon.out.read_text().splitlines()] == [listening]
