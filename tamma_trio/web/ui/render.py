"""Rendering pages: the blueprint, its Jinja filters, and the headers every page carries.

Jinja autoescapes every ``.html`` template, so each value shown (titles, comments, errors and
payloads are untrusted text) reaches the browser as text, never as markup. The headers forbid
everything the pages do not use: scripts and styles only from the dashboard's own files, no
inline script, no frames, forms that post only back here.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from quart import Blueprint, Response, render_template

from tamma_trio.models import Task

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def ui_blueprint() -> Blueprint:
    blueprint = Blueprint("ui", __name__, url_prefix="/ui", template_folder="templates")
    blueprint.add_app_template_filter(pretty_json, "pretty_json")
    blueprint.add_app_template_filter(duration, "duration")
    blueprint.add_app_template_filter(when, "when")
    blueprint.add_app_template_filter(task_title, "task_title")
    blueprint.add_app_template_filter(compact_json, "tojson_text")
    blueprint.after_request(_secure)
    return blueprint


async def page(template: str, status: int = 200, **context: Any) -> Response:
    body = await render_template(template, **context)
    return Response(body, status=status, content_type="text/html; charset=utf-8")


async def _secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def pretty_json(value: Any) -> str:
    """Indented JSON as plain text (the template escapes it like any other string)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def task_title(task: Task) -> str:
    """The issue's title when the payload carries one (untrusted text: escaped by the page)."""
    issue = task.payload.get("issue")
    title = issue.get("title") if isinstance(issue, dict) else None
    return title if isinstance(title, str) else ""


def duration(seconds: float | None) -> str:
    """3 s, 4 m 05 s, 2 h 10 m, 3 d 4 h: two units at most, readable at a glance."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} m"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
