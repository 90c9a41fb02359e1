"""Pre-flight checks of the workflow engine's surroundings, run by `serve` and `config check`.

A missing agent, a test command that is not installed, an origin that does not answer or a
workspace that cannot be written would otherwise surface task by task, each failing its four
attempts before a human hears of it. Checked once at start, each is one line naming what is
wrong and the key that sets it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tamma_trio.engine.agent import expand_command
from tamma_trio.engine.git import minimal_env
from tamma_trio.engine.workflow_options import LocalForgeOptions, WorkflowOptions

ORIGIN_TIMEOUT = 10.0


def preflight(options: WorkflowOptions) -> list[str]:
    """Every problem found, one line each; empty when the engine can start working.

    ``options`` must be resolved (absolute paths), as the engine itself uses them. A remote
    forge's repositories are checked by the forge itself when it opens (it needs its API).
    """
    forge = options.forge
    problems = [
        command_problem("engine.agent.command", expand_command(options.agent.command)),
        command_problem("engine.tests.command", options.tests.command),
        writable_problem("engine.workspace_dir", options.workspace_dir),
        origin_problem("engine.forge.origin", str(forge.origin))
        if isinstance(forge, LocalForgeOptions)
        else None,
    ]
    return [problem for problem in problems if problem is not None]


def command_problem(key: str, argv: Sequence[str]) -> str | None:
    """The program of ``argv`` must exist and be executable (found on PATH when bare)."""
    program = argv[0]
    if "{" in program:
        return None  # a placeholder: only known per task
    if os.sep in program:
        path = Path(program)
        if not path.is_file():
            return f"{key}: {program} does not exist"
        if not os.access(path, os.X_OK):
            return f"{key}: {program} is not executable"
        return None
    if shutil.which(program) is None:
        return f"{key}: {program!r} is not on PATH"
    return None


def writable_problem(key: str, directory: Path) -> str | None:
    """``directory`` (or, while it does not exist yet, its nearest parent) must be writable."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{key}: {existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{key}: {existing} is not writable"
    return None


def origin_problem(key: str, origin: str) -> str | None:
    """The origin answers ``git ls-remote`` (a local path or a URL, without prompting)."""
    try:
        done = subprocess.run(
            ["git", "ls-remote", "--heads", origin],
            env=minimal_env(GIT_TERMINAL_PROMPT="0"),
            capture_output=True,
            text=True,
            timeout=ORIGIN_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        return f"{key}: git is not on PATH"
    except subprocess.TimeoutExpired:
        return f"{key}: {origin} did not answer within {ORIGIN_TIMEOUT:g} s"
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no reason given"])[0]
        return f"{key}: {origin} does not answer ({reason})"
    return None
