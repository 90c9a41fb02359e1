"""Small pieces every REST forge client needs, whatever the host: decoding a JSON body that may be
absent or an HTML proxy page, lower-cased headers, the origin a link must stay on, and the
injected clock and sleep that let tests drive rate-limit waits without sleeping."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

RETRY_STATUSES = frozenset({502, 503, 504})
MAX_TRIES = 4

Sleep = Callable[[float], Awaitable[None]]
Wall = Callable[[], float]


def decode_json(headers: Mapping[str, str], content: bytes) -> Any:
    """The JSON body, or None (an empty 204, an HTML error page from a proxy)."""
    if not content or "json" not in headers.get("content-type", ""):
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


def lower_headers(headers: httpx.Headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
