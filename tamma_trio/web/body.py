"""Reading a request body as one bounded JSON object.

The order of the checks is the order an attacker pays for them: the declared size is refused
before a byte is read, the media type before parsing, and the actual size while reading (Quart's
MAX_CONTENT_LENGTH stops a chunked body that lies about its length).
"""

from __future__ import annotations

from typing import Any

from quart import request

from tamma_trio.strict_json import JsonError, loads_object
from tamma_trio.web.errors import ApiError

JSON_MEDIA_TYPE = "application/json"


def ascii_int(raw: str, low: int, high: int) -> int | None:
    """``raw`` as an int within [low, high], else None (no unicode digits, no 5000-digit ints)."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)):
        return None
    value = int(text)
    return value if low <= value <= high else None


def declared_length(max_bytes: int) -> int | None:
    """The Content-Length header as a number, refusing bad or oversized values before reading."""
    raw = request.headers.get("Content-Length")
    if raw is None:
        return None
    length = ascii_int(raw, 0, 2**63)
    if length is None:
        raise ApiError(400, "invalid_request", "Content-Length must be a number")
    if length > max_bytes:
        raise ApiError(413, "payload_too_large", f"body over the limit of {max_bytes} bytes")
    return length


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """One strict JSON object (see tamma_trio.strict_json), or a 400 naming the problem."""
    try:
        return loads_object(raw)
    except JsonError as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None


def _require_json_media_type() -> None:
    if request.mimetype != JSON_MEDIA_TYPE:
        shown = request.mimetype or "none"
        raise ApiError(415, "unsupported_media_type", f"expected {JSON_MEDIA_TYPE}, got {shown}")


async def read_bounded(max_bytes: int) -> bytes:
    """The whole body, refusing more than ``max_bytes`` whatever the headers claimed."""
    declared_length(max_bytes)
    raw = await request.get_data(cache=False, as_text=False, parse_form_data=False)
    if len(raw) > max_bytes:
        raise ApiError(413, "payload_too_large", f"body over the limit of {max_bytes} bytes")
    return raw


async def read_json_object(max_bytes: int) -> dict[str, Any]:
    """The body, which must be one JSON object of at most ``max_bytes``."""
    declared_length(max_bytes)
    _require_json_media_type()
    return parse_json_object(await read_bounded(max_bytes))


async def read_optional_json_object(max_bytes: int) -> dict[str, Any] | None:
    """None for an empty body (HTTP/2 may send no length at all, so read to know)."""
    raw = await read_bounded(max_bytes)
    if not raw:
        return None
    _require_json_media_type()
    return parse_json_object(raw)
