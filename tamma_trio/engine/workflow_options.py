"""The `[engine]` table of the workflow engine, validated (unknown keys refused) and resolved.

Relative paths are resolved against the daemon's working directory when the engine is built, so
a later chdir cannot move the workspace, and the agent (which runs in the worktree) finds its
script. An invalid table is a ConfigError listing every bad key,
which the daemon reports at start-up instead of failing on its first task.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from tamma_trio import repositories as repo_rules
from tamma_trio.config import describe_problem
from tamma_trio.engine.agent import expand_command
from tamma_trio.engine.limits import Limits
from tamma_trio.errors import ConfigError

GithubName = Annotated[str, AfterValidator(repo_rules.check_github)]
GitlabPath = Annotated[str, AfterValidator(repo_rules.check_gitlab)]
FORBIDDEN_AGENT_ENV = frozenset({"GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN", "TAMMA_FORGE_TOKEN"})


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalForgeOptions(Options):
    kind: Literal["local"] = "local"
    origin: Path = Path("./origin.git")  # the bare repository that acts as origin
    repository: GithubName = "local/project"
    default_branch: str = Field(default="main", min_length=1)
    required_approvals: int = Field(default=0, ge=0, le=10)
    trigger_label: str = Field(default="tamma", min_length=1)
    database: Path | None = None  # default: beside the task store's file (see forge_database)

    @property
    def repositories(self) -> tuple[str, ...]:
        return (self.repository,)


Permission = Literal["none", "read", "triage", "write", "maintain", "admin"]


class GithubForgeOptions(Options):
    """GitHub or GitHub Enterprise, with a token or as a GitHub App (exactly one of the two)."""

    kind: Literal["github"]
    api_url: str = Field(default="https://api.github.com", pattern=r"^https?://[^\s]+$")
    repositories: tuple[GithubName, ...] = Field(min_length=1)  # the allowlist
    token: SecretStr | None = None
    app_id: int = Field(default=0, ge=0)
    private_key_path: Path | None = None
    merge_method: Literal["merge", "squash", "rebase"] = "merge"
    required_approvals: int = Field(default=1, ge=0, le=10)
    checks_grace: float = Field(default=120, ge=0, le=86400)
    command_permission: Permission = "write"
    trigger_label: str = Field(default="tamma", min_length=1)  # labelling an issue asks the bot
    request_timeout: float = Field(default=30, gt=0, le=600)
    max_rate_limit_wait: float = Field(default=60, ge=0, le=3600)  # longer: retry the task later

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> GithubForgeOptions:
        has_token = self.token is not None and bool(self.token.get_secret_value())
        has_app = bool(self.app_id) or self.private_key_path is not None
        if has_token == has_app:
            raise ValueError("set either token, or app_id and private_key_path (exactly one)")
        if has_app and not (self.app_id and self.private_key_path):
            raise ValueError("a GitHub App needs both app_id and private_key_path")
        return self


class GitlabForgeOptions(Options):
    """GitLab (gitlab.com or self-managed) with a project, group or bot user's access token."""

    kind: Literal["gitlab"]
    api_url: str = Field(default="https://gitlab.com/api/v4", pattern=r"^https?://[^\s]+$")
    repositories: tuple[GitlabPath, ...] = Field(min_length=1)  # full paths, subgroups allowed
    token: SecretStr
    merge_method: Literal["merge", "squash"] = "merge"
    required_approvals: int = Field(default=1, ge=0, le=10)
    checks_grace: float = Field(default=120, ge=0, le=86400)
    command_access_level: int = Field(default=30, ge=10, le=50)  # 30 developer, 40 maintainer
    trigger_label: str = Field(default="tamma", min_length=1)
    request_timeout: float = Field(default=30, gt=0, le=600)
    max_rate_limit_wait: float = Field(default=60, ge=0, le=3600)

    @field_validator("token")
    @classmethod
    def _token_set(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("a GitLab access token is required (TAMMA_ENGINE__FORGE__TOKEN)")
        return value


def _forge_kind(value: Any) -> str:
    """The union's tag; a table without ``kind`` is the local forge (configs from before kinds)."""
    kind = value.get("kind", "local") if isinstance(value, Mapping) else getattr(value, "kind", "")
    return str(kind)


ForgeOptions = Annotated[
    Annotated[LocalForgeOptions, Tag("local")]
    | Annotated[GithubForgeOptions, Tag("github")]
    | Annotated[GitlabForgeOptions, Tag("gitlab")],
    Discriminator(_forge_kind),
]


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
    forge: ForgeOptions = LocalForgeOptions()
    agent: AgentOptions = AgentOptions()
    tests: TestsOptions = TestsOptions()

    def resolved(self, cwd: Path) -> WorkflowOptions:
        """The same options with every relative path made absolute against ``cwd``."""
        forge = _resolve_forge(self.forge, cwd)
        agent = self.agent.model_copy(update={"command": _anchor_command(self.agent.command, cwd)})
        return self.model_copy(
            update={
                "workspace_dir": _absolute(self.workspace_dir, cwd),
                "forge": forge,
                "agent": agent,
            }
        )

    def repo_root(self, repository: str) -> Path:
        """The workspace directory of one repository (its clone, worktrees, logs)."""
        return self.workspace_dir / repo_rules.workspace_dirname(repository)

    def forge_database(self, store_path: Path | None) -> Path:
        """The local forge's own file: its setting, else ``<task db>.forge.db`` beside the task
        store's file (``tamma.db`` -> ``tamma.forge.db``), else ``forge.db`` in the workspace (a
        memory queue has no file). A setting naming the task store's file itself, which older
        installs could have, means the default: the forge never writes the store's file."""
        forge = self.forge
        if not isinstance(forge, LocalForgeOptions):
            raise ConfigError(f"the {forge.kind} forge keeps no local database")
        if forge.database is not None and forge.database != store_path:
            return forge.database
        if store_path is not None:
            return store_path.with_name(f"{store_path.stem}.forge.db")
        return self.repo_root(forge.repository) / "forge.db"


AnyForgeOptions = LocalForgeOptions | GithubForgeOptions | GitlabForgeOptions


def _resolve_forge(forge: AnyForgeOptions, cwd: Path) -> AnyForgeOptions:
    if isinstance(forge, GitlabForgeOptions):
        return forge
    if isinstance(forge, GithubForgeOptions):
        key = forge.private_key_path
        return forge.model_copy(update={"private_key_path": key and _absolute(key, cwd)})
    return forge.model_copy(
        update={
            "origin": _absolute(forge.origin, cwd),
            "database": _absolute(forge.database, cwd) if forge.database else None,
        }
    )


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
        problems = [_problem(error) for error in exc.errors()]
        raise ConfigError("invalid [engine] options for the workflow engine", problems) from None


def _problem(error: Mapping[str, Any]) -> tuple[str, str, str]:
    """(key, value, problem) for the operator, without the forge union's tags in the key; an
    unknown forge kind is reported on ``engine.forge.kind``."""
    loc = tuple(part for part in error["loc"] if str(part) not in ("local", "github", "gitlab"))
    if error["type"] == "union_tag_invalid":
        context = error.get("ctx", {})
        return (
            "engine." + ".".join(map(str, (*loc, "kind"))),
            repr(context.get("tag")),
            f"expected one of {context.get('expected_tags')}",
        )
    return describe_problem({**error, "loc": loc}, "engine")
