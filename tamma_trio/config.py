"""Configuration: pydantic models and the one function that reads files and the environment.

Nothing else in tamma-trio reads os.environ; the CLI calls load_config once and passes the
frozen result down. Every model forbids unknown keys so a typo fails loudly instead of silently
running with a default.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic import ValidationError as PydanticValidationError

from tamma_trio.errors import ConfigError
from tamma_trio.notify_config import NotifyTarget

ENV_PREFIX = "TAMMA_"
CONFIG_ENV = "TAMMA_CONFIG"
DEFAULT_CONFIG_FILE = Path("tamma.toml")

# Words that make a key secret-looking (``token``, ``api_token``, ``clientSecret``): its value
# never appears in an error message or in `config check`, even when invalid or unknown.
# Short words (auth, key, url) only as a whole part of the name: ``author`` is not secret.
SECRET_NAME = re.compile(
    r"token|secret|passw|pwd|credential|apikey|dsn|(?:^|[_.-])(?:auth|key|url)(?:$|[_.-])"
)
MASK = "***"

DEFAULT_BLOCK_FILE_PATTERNS = (
    "package.json",
    "yarn.lock",
    "package-lock.json",
    "pnpm-lock.yaml",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
)
DEFAULT_PROTECTED_PATTERNS = (
    ".github/workflows/**",
    ".env*",
    "*.pem",
    "*.key",
    "secrets/**",
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AutoApproveConfig(Section):
    low_complexity: bool = True
    medium_complexity: bool = False
    max_estimated_hours: float = Field(default=8, ge=1, le=40)
    block_file_patterns: tuple[str, ...] = DEFAULT_BLOCK_FILE_PATTERNS
    # Checked again on the real diff after implementation.
    max_files_changed: int = Field(default=20, ge=1)
    max_lines_changed: int = Field(default=1000, ge=1)
    protected_file_patterns: tuple[str, ...] = DEFAULT_PROTECTED_PATTERNS


class SqliteQueueConfig(Section):
    path: Path = Path("./tamma.db")
    # FULL: an acknowledged task survives power loss. NORMAL survives only a process crash.
    synchronous: Literal["FULL", "NORMAL"] = "FULL"


class RedisQueueConfig(Section):
    # May carry a password (redis://:secret@host/0): never printed, never logged.
    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    # Every key of the store starts with {prefix}: several stores can share one server.
    prefix: str = Field(default="tamma", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    # Refuse to start unless the server runs with appendonly yes.
    require_aof: bool = False


class SqsQueueConfig(Section):
    # Names the queue per priority level, the dead-letter queue and the tables (see aws init).
    queue_name: str = Field(default="tamma", pattern=r"^[A-Za-z0-9_-]{1,60}$")
    region: str = Field(default="us-east-1", min_length=1)
    endpoint_url: str | None = None  # a local stand-in (moto); unset: AWS itself


class QueueConfig(Section):
    type: Literal["memory", "sqlite", "redis", "sqs"] = "sqlite"
    sqlite: SqliteQueueConfig = SqliteQueueConfig()
    redis: RedisQueueConfig = RedisQueueConfig()
    sqs: SqsQueueConfig = SqsQueueConfig()


class HealthCheckConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    path: str = Field(default="/health", pattern=r"^/")


class MetricsConfig(Section):
    enabled: bool = True
    port: int = Field(default=9090, ge=0, le=65535)
    path: str = Field(default="/metrics", pattern=r"^/")


class ApiConfig(Section):
    # Without a token, mutating API calls are accepted from loopback clients only.
    token: SecretStr | None = None
    # Serve the API beyond loopback with no token: only behind a proxy that checks every caller.
    allow_unauthenticated: bool = False
    max_body_bytes: int = Field(default=1_048_576, ge=1024)


class ServiceConfig(Section):
    poll_interval: float = Field(default=5, ge=0.1, le=60)
    max_concurrent_tasks: int = Field(default=3, ge=1, le=20)
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_delay: float = Field(default=5, ge=0.1, le=300)
    max_retry_delay: float = Field(default=300, ge=1, le=3600)
    shutdown_timeout: float = Field(default=30, gt=0, le=3600)
    task_timeout: float = Field(default=3600, gt=0)
    lease_duration: float = Field(default=60, ge=5, le=3600)
    bot_name: str = Field(default="tamma", min_length=1)
    command_authors: tuple[str, ...] = ()  # empty: any author except the bot itself
    auto_approve: AutoApproveConfig = AutoApproveConfig()
    queue: QueueConfig = QueueConfig()
    health_check: HealthCheckConfig = HealthCheckConfig()
    metrics: MetricsConfig = MetricsConfig()
    api: ApiConfig = ApiConfig()

    @model_validator(mode="after")
    def _delays_ordered(self) -> ServiceConfig:
        if self.max_retry_delay < self.retry_delay:
            raise ValueError("max_retry_delay must be >= retry_delay")
        return self


class EngineConfig(BaseModel):
    """The engine by name ("workflow") or import path "pkg.module:factory"; other keys go to its
    factory."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = "workflow"

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def forge_kind(self) -> str:
        """``[engine.forge] kind`` (local when unset): whose repository names intake accepts."""
        forge = self.options().get("forge")
        kind = forge.get("kind", "local") if isinstance(forge, dict) else "local"
        return str(kind)


# GitHub's author_association values; a payload claiming anything else is treated as untrusted.
Association = Literal[
    "OWNER",
    "MEMBER",
    "COLLABORATOR",
    "CONTRIBUTOR",
    "FIRST_TIME_CONTRIBUTOR",
    "FIRST_TIMER",
    "MANNEQUIN",
    "NONE",
]


class GithubWebhookConfig(Section):
    # Every secret verifies (rotation: add the new one, switch the hook, drop the old one).
    # None configured: every delivery is refused, so a daemon never trusts unsigned bodies.
    secrets: tuple[SecretStr, ...] = ()
    trusted_associations: tuple[Association, ...] = ("OWNER", "MEMBER", "COLLABORATOR")


class GitlabWebhookConfig(Section):
    tokens: tuple[SecretStr, ...] = ()
    # GitLab payloads say nothing about the author's role: only these logins may command.
    command_authors: tuple[str, ...] = ()


class WebhooksConfig(Section):
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=26_214_400)
    delivery_retention_days: int = Field(default=14, ge=1, le=3650)
    github: GithubWebhookConfig = GithubWebhookConfig()
    gitlab: GitlabWebhookConfig = GitlabWebhookConfig()


class RetentionConfig(Section):
    """How long finished tasks and their events are kept before the daemon prunes them."""

    enabled: bool = True
    days: float = Field(default=30, gt=0)  # completed and cancelled tasks
    failed_days: float = Field(default=90, gt=0)  # failed ones wait longer for a human
    interval: float = Field(default=3600, ge=1)  # seconds between the daemon's sweeps
    batch_size: int = Field(default=500, ge=1, le=10_000)  # tasks deleted per transaction


class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"


class Config(Section):
    service: ServiceConfig = ServiceConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    engine: EngineConfig = EngineConfig()
    log: LogConfig = LogConfig()
    notify: tuple[NotifyTarget, ...] = ()
    retention: RetentionConfig = RetentionConfig()


def resolve_config_path(path: Path | None, env: Mapping[str, str]) -> Path | None:
    """--config, else TAMMA_CONFIG, else ./tamma.toml when present, else None (defaults)."""
    if path is not None:
        return path
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file and TAMMA_<SECTION>__<KEY> overrides into a validated Config."""
    env = os.environ if env is None else env
    source = resolve_config_path(path, env)
    data = _read_toml(source) if source is not None else {}
    _apply_env_overrides(data, env)
    try:
        return Config.model_validate(data)
    except PydanticValidationError as exc:
        problems = [describe_problem(error) for error in exc.errors()]
        where = str(source) if source else "defaults"
        raise ConfigError(f"invalid configuration ({where})", problems) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None


def env_overrides(env: Mapping[str, str]) -> list[str]:
    """The names of the TAMMA_<SECTION>__<KEY> variables that override the config, sorted
    (names only: a value may be a secret)."""
    return sorted(name for name in env if _override_path(name) is not None)


def _override_path(name: str) -> list[str] | None:
    if not name.startswith(ENV_PREFIX) or "__" not in name:
        return None
    path = name[len(ENV_PREFIX) :].lower().split("__")
    return path if all(path) else None


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Fold TAMMA_SERVICE__QUEUE__TYPE=memory into data["service"]["queue"]["type"]."""
    for name, raw in env.items():
        path = _override_path(name)
        if path is None:
            continue
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name} overrides {'.'.join(path)} below a plain value")
            node = child
        node[path[-1]] = _env_value(raw)


def _env_value(raw: str) -> Any:
    """Lists and tables come as JSON; scalars stay strings for pydantic's lax coercion."""
    if raw.strip().startswith(("[", "{")):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def looks_secret(key: object) -> bool:
    """True for a key whose name suggests a credential (any case, any separator)."""
    return SECRET_NAME.search(str(key).lower()) is not None


def describe_problem(error: Mapping[str, Any], prefix: str = "") -> tuple[str, str, str]:
    """(dotted path, value as shown, what is wrong) for one pydantic error.

    The value is shown only when it cannot be a secret: never for an unknown key (``tokn`` is a
    mistyped ``token`` more often than not), never for a secret-looking key, and a table or a
    list only as ``{...}``/``[...]``, since it may hold either.
    """
    loc = [str(part) for part in error["loc"]]
    where = ".".join([prefix, *loc] if prefix else loc) or "(top level)"
    unknown = error["type"] == "extra_forbidden"
    value = error.get("input")
    if unknown or any(looks_secret(part) for part in loc):
        shown = MASK
    elif isinstance(value, Mapping):
        shown = "{...}"
    elif isinstance(value, list | tuple):
        shown = "[...]"
    else:
        shown = _short(value)
    return where, shown, "unknown key" if unknown else str(error["msg"])


def mask_secrets(value: Any, mask: str = "**********") -> Any:
    """A copy of a config table with the values of secret-looking keys replaced by ``mask``
    (by default the one pydantic prints for a SecretStr); an unset one stays unset."""
    if isinstance(value, Mapping):
        return {
            k: mask if looks_secret(k) and v is not None else mask_secrets(v, mask)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(item, mask) for item in value]
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
