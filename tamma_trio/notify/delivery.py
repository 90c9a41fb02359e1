"""One webhook request: its body in the target's format, its headers and signature.

The signature follows GitHub's webhooks, which receivers already know how to check:
``X-Tamma-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the secret>``. Every request
names its event id (``X-Tamma-Event-Id``, also in the JSON body) so a receiver can drop the
repeats that at-least-once delivery brings.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tamma_trio.notify_config import NotifyTarget
from tamma_trio.service_events import ServiceEvent

SIGNATURE_HEADER = "X-Tamma-Signature-256"
USER_AGENT = "tamma-trio-webhook"

_SLACK_TITLES = {
    "service.started": "tamma-trio started",
    "service.stopped": "tamma-trio stopped",
    "task.completed": "Task completed",
    "task.failed": "Task failed",
    "task.retrying": "Task will be retried",
    "escalation.required": "A plan needs a human's approval",
    "task.escalated": "Task escalated to a human",
    "task.quarantined": "Task quarantined after repeated crashes",
}


def body(event: ServiceEvent, target: NotifyTarget) -> bytes:
    payload = slack_message(event) if target.format == "slack" else event.public()
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def slack_message(event: ServiceEvent) -> dict[str, Any]:
    """The text shape of Slack's incoming webhooks (also understood by Mattermost, Rocket.Chat)."""
    title = _SLACK_TITLES[event.kind.value]
    where = f" {event.subject}" if event.subject else ""
    task = f" (task {event.task_id}, {event.task_type})" if event.task_id else ""
    lines = [f"*{title}*{where}{task}"]
    if event.reason:
        lines.append(event.reason)
    lines.append(f"event {event.id} at {event.at.isoformat()}")
    return {"text": "\n".join(lines)}


def sign(raw: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def headers(
    event: ServiceEvent, delivery_id: int, raw: bytes, target: NotifyTarget
) -> dict[str, str]:
    found = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Tamma-Event": event.kind.value,
        "X-Tamma-Event-Id": str(event.id),
        "X-Tamma-Notification": str(delivery_id),
    }
    if target.secret is not None:
        found[SIGNATURE_HEADER] = sign(raw, target.secret.get_secret_value())
    return found
