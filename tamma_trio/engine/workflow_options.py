"""The `[engine]` table of the workflow engine, validated (unknown keys refused) and resolved.

Relative paths are resolved against the daemon's working directory when the engine is built, so
a later chdir cannot move the workspace, and the agent (which runs in the worktree) finds its
script. An invalid table is a ConfigError listing every bad key,
which the daemon reports at start-up instead of failing on its first task.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from tamma_trio.config import describe_problem
from tamma_trio.engine.agent import expand_command
from tamma_trio.engine.limits import Limits
from tamma_trio.errors import ConfigError
from tamma_trio.models import Repository

FORBIDDEN_AGENT_ENV = frozenset({"GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN", "TAMMA_FORGE_TOKEN"})


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ForgeOptions(Options):
    kind: Literal["local"] = "local"
    origin: Path = Path("./origin.git")  # the bare repository that acts as origin
    repository: Repository = "local/project"
    default_branch: str = Field(default="main", min_length=1)
    required_approvals: int = Field(default=0, ge=0, le=10)
    trigger_label: str = Field(default="tamma", min_length=1)
    database: Path | None = None  # default: the task store's SQLite file


class LimitOptions(Options):
    """Per-run resource limits; unset means no limit beyond the timeout."""

    max_memory_mb: int | None = Field(default=None, ge=32)
    max_cpu_seconds: float | None = Field(default=None, gt=0)
    max_processes: int | None = Field(default=None, ge=1)

    def limits(self) -> Limits:
        return Limits(self.max_memory_mb, self.max_cpu_seconds, self.max_processes)


class AgentOptions(LimitOptions):
    command: str | tuple[str, ...] = ("python", "examples/agent.py", "{prompt_file}")
    timeout: float = Field(default=900, gt=0)
    log_max_bytes: int = Field(default=1_000_000, ge=1024)
    kill_grace: float = Field(default=5, ge=0, le=120)
    env: tuple[str, ...] = ()  # names passed through from the daemon, e.g. ANTHROPIC_API_KEY
    structured: bool = False  # ask the agent for analysis and plan JSON before implementing

    @field_validator("command")
    @classmethod
    def _known_command(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        expand_command(value)
        return value

    @field_validator("env")
    @classmethod
    def _no_forge_token(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        leaked = sorted(set(value) & FORBIDDEN_AGENT_ENV)
        if leaked:
            raise ValueError(f"the agent must never get the forge token ({', '.join(leaked)})")
        return value


class TestsOptions(LimitOptions):
    __test__ = False  # not a pytest class

    command: tuple[str, ...] = Field(default=("python", "-m", "pytest", "-q"), min_length=1)
    timeout: float = Field(default=600, gt=0)
    log_max_bytes: int = Field(default=1_000_000, ge=1024)


class WorkflowOptions(Options):
    workspace_dir: Path = Path("./workspaces")
    git_timeout: float = Field(default=120, gt=0)
    bot_email: str = Field(default="tamma-bot@localhost", pattern=r"^[^@\s]+@[^@\s]+$")
    forge: ForgeOptions = ForgeOptions()
    agent: AgentOptions = AgentOptions()
    tests: TestsOptions = TestsOptions()

    def resolved(self, cwd: Path) -> WorkflowOptions:
        """The same options with every relative path made absolute against ``cwd``."""
        forge = self.forge.model_copy(
            update={
                "origin": _absolute(self.forge.origin, cwd),
                "database": _absolute(self.forge.database, cwd) if self.forge.database else None,
            }
        )
        agent = self.agent.model_copy(update={"command": _anchor_command(self.agent.command, cwd)})
        return self.model_copy(
            update={
                "workspace_dir": _absolute(self.workspace_dir, cwd),
                "forge": forge,
                "agent": agent,
            }
        )

    @property
    def repo_root(self) -> Path:
        """The workspace directory of the configured repository (clone, worktrees, logs)."""
        return self.workspace_dir / self.forge.repository.replace("/", "__")

    def forge_database(self, store_path: Path | None) -> Path:
        """Where the local forge keeps its rows: its own setting, else the task store's file,
        else a file in the workspace (a memory queue has no file to share)."""
        return self.forge.database or store_path or self.repo_root / "forge.db"


def _anchor_command(command: str | tuple[str, ...], cwd: Path) -> str | tuple[str, ...]:
    """Make relative file arguments (``examples/agent.py``) absolute.

    The agent runs inside the task's worktree, so a script path written relative to the
    daemon's directory would not be found there. Only arguments without placeholders that name
    an existing file under ``cwd`` are touched.
    """
    if isinstance(command, str):
        return command
    return tuple(
        str((cwd / arg).resolve())
        if "{" not in arg and not Path(arg).is_absolute() and (cwd / arg).is_file()
        else arg
        for arg in command
    )


def _absolute(path: Path, cwd: Path) -> Path:
    return path if path.is_absolute() else (cwd / path).resolve()


def parse_options(options: Mapping[str, Any]) -> WorkflowOptions:
    """Validate the engine table; ConfigError with one (path, value, problem) per bad key."""
    try:
        return WorkflowOptions.model_validate(dict(options))
    except PydanticValidationError as exc:
        problems = [describe_problem(error, "engine") for error in exc.errors()]
        raise ConfigError("invalid [engine] options for the workflow engine", problems) from None
