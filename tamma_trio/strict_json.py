"""Strict JSON for every door: one parser, so the API, the CLI and the webhooks refuse alike.

Python's json module accepts things that are not JSON or that hurt later: ``NaN`` and
``Infinity`` (stored, they make the task unreadable as JSON), a repeated key (the last one wins,
so two readers of one body can disagree about it), lone surrogates such as ``"\\ud800"`` (they
cannot be written as UTF-8, so storing or logging them fails long after the request was
accepted), and nesting deep enough to raise RecursionError in whatever walks the value next.
Each of these is refused here with a message that names the problem.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

from tamma_trio.errors import ValidationError

# Forge events nest about eight levels deep; far beyond that is an attack or a bug, and every
# later walk over the value (pydantic, json.dumps, the store) stays well inside Python's stack.
MAX_DEPTH = 64


class JsonError(ValidationError):
    """The text is not one strict JSON value; the message says why, for the 400 or the CLI."""


def _reject_constant(name: str) -> NoReturn:
    raise JsonError(f"{name} is not valid JSON")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonError(f"duplicate key {_shown(key)}")
        result[key] = value
    return result


def _shown(text: str) -> str:
    safe = text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return repr(safe if len(safe) <= 60 else safe[:57] + "...")


def decode_utf8(raw: bytes, what: str = "body") -> str:
    """``raw`` as UTF-8 text; a BOM or invalid bytes are refused (JSON on the wire is UTF-8)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise JsonError(f"{what} starts with a byte order mark; send plain UTF-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonError(f"{what} is not UTF-8 (invalid byte at offset {exc.start})") from None


def loads(text: str | bytes, what: str = "body") -> Any:
    """Parse one strict JSON value (see the module docstring for what is refused)."""
    if isinstance(text, bytes):
        text = decode_utf8(text, what)
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_refuse_duplicates
        )
    except JsonError as exc:
        raise JsonError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise JsonError(f"{what} is nested too deeply (more than {MAX_DEPTH} levels)") from None
    except ValueError as exc:
        raise JsonError(f"{what} is not valid JSON: {exc}") from None
    check_value(value, what)
    return value


def loads_object(text: str | bytes, what: str = "body") -> dict[str, Any]:
    """Like ``loads``, for the doors that take exactly one JSON object."""
    value = loads(text, what)
    if not isinstance(value, dict):
        raise JsonError(f"{what} must be a JSON object")
    return value


def check_value(value: Any, what: str = "body") -> None:
    """Refuse values nested deeper than MAX_DEPTH, strings holding lone surrogates, NaN and
    infinities (a value built in Python, not parsed here, can hold any of them).

    Iterative, so a hostile value cannot exhaust the stack of the check itself.
    """
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item, what)
        elif isinstance(item, float) and not math.isfinite(item):
            raise JsonError(f"{what} holds {item}, which is not a JSON number")
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise JsonError(f"{what} is nested too deeply (more than {MAX_DEPTH} levels)")
            if isinstance(item, dict):
                pending.extend((key, depth) for key in item)
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)


def _check_text(text: str, what: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = f"\\u{ord(text[exc.start]):04x}"
        raise JsonError(f"{what} holds a lone surrogate ({bad}), which is not text") from None
