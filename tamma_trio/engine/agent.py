"""Run the coding agent: an argv template or a preset, in the worktree, in its own process group.

The agent only edits files; the engine commits and pushes. It gets a minimal environment (a
whitelist plus the names the operator lists, never the forge token), the prompt through a file or
an argument (never an interactive stdin), a timeout after which its whole process group is
killed, and a per-task log with a size cap. Claude Code's ``--output-format json`` result is
parsed for cost, session and ``is_error``.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tamma_trio.engine.git import minimal_env
from tamma_trio.engine.limits import RunGuard
from tamma_trio.engine.process import ProcessOutcome, run_in_group
from tamma_trio.errors import EngineError
from tamma_trio.step_records import AgentRun

Mode = Literal["implement", "analyze", "plan"]

PRESETS: Mapping[str, tuple[str, ...]] = {
    "claude": (
        "claude", "-p", "{prompt}", "--output-format", "json",
        "--permission-mode", "acceptEdits", "--disallowedTools", "Bash(git push:*)",
    ),
    "codex": ("codex", "exec", "--sandbox", "workspace-write", "{prompt}"),
    "aider": (
        "aider", "--message-file", "{prompt_file}", "--yes-always", "--no-auto-commits",
        "--no-stream",
    ),
}  # fmt: skip
PLACEHOLDERS = frozenset(
    {"prompt", "prompt_file", "workdir", "issue_number", "issue_title", "branch", "mode"}
)
# Linux caps one argv string at 128 KiB; a longer prompt is cut (the file keeps all of it).
MAX_PROMPT_ARG = 100_000


def expand_command(command: str | Sequence[str]) -> tuple[str, ...]:
    """A preset name becomes its argv template; a list is checked and kept.

    Raises ValueError naming an unknown preset or placeholder, for the config validator.
    """
    if isinstance(command, str):
        if command not in PRESETS:
            raise ValueError(f"unknown agent preset {command!r} (known: {', '.join(PRESETS)})")
        return PRESETS[command]
    argv = tuple(command)
    if not argv:
        raise ValueError("agent command must not be empty")
    for arg in argv:
        for _, field, _, _ in string.Formatter().parse(arg):
            if field is not None and field not in PLACEHOLDERS:
                known = ", ".join(sorted(PLACEHOLDERS))
                raise ValueError(f"unknown placeholder {{{field}}} in {arg!r} (known: {known})")
    return argv


@dataclass(frozen=True)
class AgentRequest:
    mode: Mode
    prompt: str
    workdir: Path
    task_dir: Path
    issue_number: int
    issue_title: str
    branch: str = ""


@dataclass(frozen=True)
class AgentReport:
    """A finished agent run: the record stored with Changes, plus the text it answered."""

    run: AgentRun
    text: str


@dataclass(frozen=True)
class ClaudeResult:
    is_error: bool
    text: str
    cost_usd: float | None
    session_id: str | None
    subtype: str = ""


def parse_claude_output(stdout: bytes) -> ClaudeResult | None:
    """The result object of ``claude -p --output-format json``, or the last result line of
    ``stream-json``; None when stdout holds no such object."""
    text = stdout.decode("utf-8", "replace").strip()
    for candidate in (text, *reversed(text.splitlines())):
        data = _json_or_none(candidate)
        if isinstance(data, dict) and data.get("type", "result") == "result":
            cost = data.get("total_cost_usd")
            return ClaudeResult(
                is_error=bool(data.get("is_error", False)),
                text=str(data.get("result") or ""),
                cost_usd=float(cost) if isinstance(cost, int | float) else None,
                session_id=str(data["session_id"]) if data.get("session_id") else None,
                subtype=str(data.get("subtype") or ""),
            )
    return None


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in an agent's answer, with or without a ```json fence around it."""
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.DOTALL)
    candidate = fenced.group(1) if fenced else text[text.find("{") : text.rfind("}") + 1]
    data = _json_or_none(candidate)
    return data if isinstance(data, dict) else None


class AgentRunner:
    def __init__(
        self,
        command: str | Sequence[str],
        *,
        timeout: float,
        log_max_bytes: int,
        kill_grace: float = 5.0,
        env_names: Sequence[str] = (),
        guard: RunGuard | None = None,
    ) -> None:
        self.argv = expand_command(command)
        self.is_claude = Path(self.argv[0]).name == "claude"
        self.timeout = timeout
        self.log_max_bytes = log_max_bytes
        self.kill_grace = kill_grace
        self.env_names = tuple(env_names)
        self.guard = guard

    async def run(self, request: AgentRequest) -> AgentReport:
        """Run the agent once; EngineError on timeout, a failed exit or a Claude error result."""
        request.task_dir.mkdir(parents=True, exist_ok=True)
        prompt_file = request.task_dir / f"{request.mode}-prompt.md"
        prompt_file.write_text(request.prompt, encoding="utf-8")
        log_path = request.task_dir / f"agent-{request.mode}.log"
        outcome = await run_in_group(
            self._argv(request, prompt_file),
            cwd=request.workdir,
            env=self._env(request, prompt_file),
            timeout=self.timeout,
            log_path=log_path,
            log_max_bytes=self.log_max_bytes,
            kill_grace=self.kill_grace,
            guard=self.guard,
        )
        return self._report(outcome, log_path)

    def _argv(self, request: AgentRequest, prompt_file: Path) -> list[str]:
        values = {
            "prompt": request.prompt[:MAX_PROMPT_ARG],
            "prompt_file": str(prompt_file),
            "workdir": str(request.workdir),
            "issue_number": str(request.issue_number),
            "issue_title": request.issue_title,
            "branch": request.branch,
            "mode": request.mode,
        }
        return [arg.format_map(values) for arg in self.argv]

    def _env(self, request: AgentRequest, prompt_file: Path) -> dict[str, str]:
        return minimal_env(
            self.env_names,
            TAMMA_MODE=request.mode,
            TAMMA_PROMPT_FILE=str(prompt_file),
            TAMMA_ISSUE_NUMBER=str(request.issue_number),
            TAMMA_WORKDIR=str(request.workdir),
        )

    def _report(self, outcome: ProcessOutcome, log_path: Path) -> AgentReport:
        context = {"log": str(log_path), "output_tail": outcome.tail[-1500:]}
        if outcome.limit_exceeded and self.guard is not None:
            raise EngineError(
                self.guard.message(outcome.limit_exceeded),
                code="limit_exceeded",
                retryable=False,
                context=context,
            )
        if outcome.timed_out:
            raise EngineError(
                f"agent timed out after {self.timeout:g} s; its process group was killed",
                code="agent_timeout",
                retryable=True,
                context=context,
            )
        claude = parse_claude_output(outcome.stdout) if self.is_claude else None
        if outcome.exit_code != 0:
            raise EngineError(
                f"agent exited with code {outcome.exit_code}",
                code="agent_failed",
                retryable=True,
                context=context,
            )
        if claude is not None and claude.is_error:
            raise EngineError(
                f"agent reported an error ({claude.subtype or 'is_error'}): {claude.text[:300]}",
                code="agent_error",
                retryable=True,
                context=context,
            )
        run = AgentRun(
            exit_code=outcome.exit_code,
            duration=round(outcome.duration, 3),
            cost_usd=claude.cost_usd if claude else None,
            session_id=claude.session_id if claude else None,
            log_path=str(log_path),
        )
        text = claude.text if claude else outcome.stdout.decode("utf-8", "replace")
        return AgentReport(run=run, text=text)
