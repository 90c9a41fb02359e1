"""Shared pieces of the workflow engine tests: a seeded bare origin, engine options, forge rows,
and a way to see whether a process group still has living members."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from tamma_trio.engine.base import EngineContext
from tamma_trio.engine.forge.local_db import ForgeDb
from tamma_trio.engine.forge.seed import init_origin
from tamma_trio.engine.workflow import WorkflowEngine, create_engine
from tamma_trio.log import Redactor

AGENTS = Path(__file__).parent / "agents"
EXAMPLE_AGENT = Path(__file__).parent.parent / "examples" / "agent.py"
REPO = "acme/demo"
BOT = "tamma-bot"
UNITTEST = (sys.executable, "-m", "unittest", "-q")


def agent_argv(script: str, *extra: str) -> list[str]:
    return [sys.executable, str(AGENTS / script), *extra]


def engine_options(tmp_path: Path, agent: Any, **agent_extra: Any) -> dict[str, Any]:
    """The `[engine]` table the tests use: origin and workspaces in tmp_path, unittest as CI."""
    return {
        "workspace_dir": str(tmp_path / "workspaces"),
        "git_timeout": 30,
        "forge": {"origin": str(tmp_path / "origin.git"), "repository": REPO},
        "agent": {"command": agent, "timeout": 30, "kill_grace": 1, **agent_extra},
        "tests": {"command": list(UNITTEST), "timeout": 60},
    }


def make_engine(
    tmp_path: Path,
    agent: Any,
    *,
    enqueue: Any = None,
    redactor: Redactor | None = None,
    **agent_extra: Any,
) -> tuple[WorkflowEngine, Path]:
    """A workflow engine over a freshly seeded origin; returns it and its forge database."""
    if not (tmp_path / "origin.git").exists():
        init_origin(tmp_path / "origin.git")
    context = EngineContext(
        bot_name=BOT,
        database_path=tmp_path / "tamma.db",
        enqueue=enqueue,
        redactor=redactor or Redactor(),
    )
    engine = create_engine(engine_options(tmp_path, agent, **agent_extra), context)
    return engine, tmp_path / "tamma.forge.db"  # the forge's own file, beside the task store's


def add_issue(database: Path, title: str, body: str = "", labels: tuple[str, ...] = ()) -> int:
    db = ForgeDb(database)
    try:
        return db.add_issue(REPO, title, body, "alice", labels)
    finally:
        db.close()


def forge_db(database: Path) -> ForgeDb:
    return ForgeDb(database)


def git_out(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.strip()


def live_group_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that are not zombies (PID 1 here may never reap them)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


async def group_gone(pgid: int, within: float = 5.0) -> bool:
    """True once no member of ``pgid`` is alive. A member that got SIGKILL dies asynchronously
    (the kernel delivers it when the process next runs), so this polls, bounded."""
    with trio.move_on_after(within):
        while live_group_members(pgid):
            await trio.sleep(0.01)
        return True
    return False


def process_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


assert os.name == "posix", "process groups and /proc: Linux only"
