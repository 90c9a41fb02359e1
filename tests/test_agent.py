"""The agent runner with real subprocesses: process-group kill on timeout and on cancellation,
Claude's JSON result, the log cap, the minimal environment, and template checks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import trio

from tamma_trio.engine.agent import (
    PRESETS,
    AgentRequest,
    AgentRunner,
    expand_command,
    extract_json_object,
    parse_claude_output,
)
from tamma_trio.errors import EngineError
from tests.workflow_helpers import AGENTS, agent_argv, group_gone, process_state


def request(tmp_path: Path, prompt: str = "Issue: #3\nTitle: Do it\n") -> AgentRequest:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return AgentRequest("implement", prompt, workdir, tmp_path / "task", 3, "Do it", "tamma/3-x")


def pids_of(pidfile: Path) -> tuple[int, int, int]:
    leader, child, pgid = (int(part) for part in pidfile.read_text().split())
    return leader, child, pgid


async def wait_for_file(path: Path) -> None:
    with trio.fail_after(10):
        while not path.exists() or not path.read_text().strip():
            await trio.sleep(0.02)


@pytest.mark.parametrize("ignore_term", [False, True])
async def test_timeout_kills_the_whole_process_group(tmp_path: Path, ignore_term: bool) -> None:
    pidfile = tmp_path / "pids"
    extra = ("--ignore-term",) if ignore_term else ()
    runner = AgentRunner(
        agent_argv("sleep_forever.py", str(pidfile), *extra),
        timeout=1.0,
        log_max_bytes=10_000,
        kill_grace=0.3,
    )
    started = trio.current_time()
    with pytest.raises(EngineError) as caught:
        await runner.run(request(tmp_path))
    elapsed = trio.current_time() - started
    leader, child, pgid = pids_of(pidfile)
    assert caught.value.code == "agent_timeout" and caught.value.retryable
    assert pgid == leader != os.getpgid(0)  # the agent led its own group
    assert await group_gone(pgid)
    assert process_state(child) in (None, "Z")
    assert 1.0 <= elapsed < 1.0 + 0.3 + 5  # SIGKILL after the grace when SIGTERM is ignored
    assert "hanging" in caught.value.context["output_tail"]


async def test_cancellation_kills_the_group_before_propagating(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    runner = AgentRunner(
        agent_argv("sleep_forever.py", str(pidfile), "--ignore-term"),
        timeout=60,
        log_max_bytes=10_000,
        kill_grace=0.3,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runner.run, request(tmp_path))
        await wait_for_file(pidfile)
        nursery.cancel_scope.cancel()  # what the daemon's drain deadline does
    leader, child, pgid = pids_of(pidfile)
    assert await group_gone(pgid)
    assert process_state(leader) in (None, "Z") and process_state(child) in (None, "Z")


async def test_claude_preset_parses_cost_session_and_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{AGENTS}{os.pathsep}{os.environ['PATH']}")
    runner = AgentRunner("claude", timeout=30, log_max_bytes=100_000)
    report = await runner.run(request(tmp_path))
    assert report.run.cost_usd == pytest.approx(0.0421)
    assert report.run.session_id == "5f0c2b7e-fake-session"
    assert report.text == "Done: edited CLAUDE_WAS_HERE.md"
    edited = tmp_path / "work" / "CLAUDE_WAS_HERE.md"
    assert edited.read_text() == "Issue: #3\n"  # the prompt arrived as the -p argument
    assert json.loads(Path(report.run.log_path).read_text())["type"] == "result"


async def test_claude_is_error_result_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{AGENTS}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CLAUDE_ERROR", "1")
    runner = AgentRunner(
        "claude", timeout=30, log_max_bytes=100_000, env_names=["FAKE_CLAUDE_ERROR"]
    )
    with pytest.raises(EngineError) as caught:
        await runner.run(request(tmp_path))
    assert caught.value.code == "agent_error" and "error_max_turns" in str(caught.value)


def test_parse_claude_output_shapes() -> None:
    single = b'{"type": "result", "is_error": false, "result": "ok", "total_cost_usd": 1.5}'
    stream = b'{"type": "system"}\n{"type": "assistant"}\n' + single + b"\n"
    pretty = json.dumps(json.loads(single), indent=2).encode()
    for shape in (single, stream, pretty):
        parsed = parse_claude_output(shape)
        assert parsed is not None and parsed.cost_usd == 1.5 and parsed.text == "ok"
    assert parse_claude_output(b"plain text, no json") is None
    assert parse_claude_output(b'{"type": "assistant"}') is None


async def test_failed_exit_is_a_retryable_error_with_the_output_tail(tmp_path: Path) -> None:
    code = "import sys; print('boom'); sys.exit(3)"
    runner = AgentRunner([sys.executable, "-c", code], timeout=30, log_max_bytes=10_000)
    with pytest.raises(EngineError) as caught:
        await runner.run(request(tmp_path))
    assert caught.value.code == "agent_failed" and caught.value.retryable
    assert "code 3" in str(caught.value) and "boom" in caught.value.context["output_tail"]


async def test_log_is_capped_and_says_how_much_was_dropped(tmp_path: Path) -> None:
    code = "import sys; sys.stdout.write('x' * 50000)"
    runner = AgentRunner([sys.executable, "-c", code], timeout=30, log_max_bytes=4096)
    report = await runner.run(request(tmp_path))
    log = Path(report.run.log_path).read_bytes()
    assert log.startswith(b"x" * 4096) and b"45904 more bytes dropped" in log
    assert len(log) < 4096 + 100


async def test_agent_gets_a_minimal_environment_and_the_placeholders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret_never_passed")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "passed-on-request")
    out = tmp_path / "env.json"
    code = (
        "import json, os, sys; json.dump([dict(os.environ), sys.argv[1:]], open(sys.argv[1], 'w'))"
    )
    argv = [sys.executable, "-c", code, str(out), "{issue_number}", "{branch}", "{mode}"]
    runner = AgentRunner(argv, timeout=30, log_max_bytes=10_000, env_names=["ANTHROPIC_API_KEY"])
    await runner.run(request(tmp_path))
    env, args = json.loads(out.read_text())
    assert "GITHUB_TOKEN" not in env and env["ANTHROPIC_API_KEY"] == "passed-on-request"
    assert env["TAMMA_ISSUE_NUMBER"] == "3" and env["TAMMA_MODE"] == "implement"
    assert args[1:] == ["3", "tamma/3-x", "implement"]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("gpt-engineer", "unknown agent preset 'gpt-engineer'"),
        (["run", "{prompt_path}"], "unknown placeholder {prompt_path}"),
        ([], "must not be empty"),
    ],
)
def test_bad_commands_are_refused(command: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        expand_command(command)  # type: ignore[arg-type]


def test_presets_use_only_known_placeholders() -> None:
    for name in PRESETS:
        assert expand_command(name) == PRESETS[name]
    assert "--output-format" in PRESETS["claude"] and "json" in PRESETS["claude"]


def test_extract_json_object_from_fenced_or_bare_answers() -> None:
    assert extract_json_object('Here:\n```json\n{"complexity": "low"}\n```') == {
        "complexity": "low"
    }
    assert extract_json_object('Sure. {"riskLevel": "high"} Done.') == {"riskLevel": "high"}
    assert extract_json_object("no object") is None
    assert extract_json_object("[1, 2]") is None
