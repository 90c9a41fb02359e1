"""The `[[notify]]` tables: outbound webhooks that receive service events.

A target's URL often is the credential (a Slack incoming-webhook URL carries its token in the
path), so it is a SecretStr and is shown only as scheme and host. The target's stored name is a
digest of the URL: stable across restarts and reordering, and safe to print.
"""

from __future__ import annotations

import hashlib
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from tamma_trio.service_events import EventKind

# What pages a human by default: everything that needs one, nothing routine.
DEFAULT_NOTIFY_EVENTS = (
    EventKind.ESCALATION_REQUIRED,
    EventKind.TASK_ESCALATED,
    EventKind.TASK_FAILED,
    EventKind.TASK_QUARANTINED,
)


class NotifyTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr
    events: tuple[EventKind, ...] = DEFAULT_NOTIFY_EVENTS
    secret: SecretStr | None = None  # signs each body: X-Tamma-Signature-256
    format: Literal["json", "slack"] = "json"
    max_attempts: int = Field(default=12, ge=1, le=100)  # then the delivery is dead
    timeout: float = Field(default=10, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("events")
    @classmethod
    def _some_events(cls, value: tuple[EventKind, ...]) -> tuple[EventKind, ...]:
        if not value:
            raise ValueError("name at least one event (a target that hears nothing is a typo)")
        return value

    @field_validator("secret")
    @classmethod
    def _empty_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @property
    def name(self) -> str:
        """How deliveries name this target: a digest of its URL, never the URL."""
        digest = hashlib.sha256(self.url.get_secret_value().encode()).hexdigest()
        return f"hook-{digest[:12]}"

    @property
    def shown(self) -> str:
        """Scheme, host and port only: user info, path and query may hold credentials."""
        parts = urlsplit(self.url.get_secret_value())
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}/..."
