"""Who is looking at the dashboard: the login cookie, the CSRF token of its forms, the checks.

The API token is never stored in the browser. The session cookie holds only the time it was
issued and an HMAC of that time keyed by the token, so it survives a daemon restart, dies when the
token changes, and gives an attacker who reads it nothing to replay against the API. Each form
carries a CSRF token, an HMAC of the session cookie under a different label, so a page on another
site cannot post an action even if a browser sends the cookie along; the cookie is also
SameSite=Strict and HttpOnly, and a POST whose Origin is another site is refused outright.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr
from quart import request

from tamma_trio.web.auth import bearer_credential, token_matches

COOKIE_NAME = "tamma_session"
SESSION_SECONDS = 12 * 3600
# A cookie issued slightly in the future (clock step between two hosts' views) still counts.
_CLOCK_SLACK = 60


@dataclass(frozen=True)
class Viewer:
    """The current request's rights: may it read the pages, may it act on tasks."""

    can_read: bool
    can_act: bool
    session: str | None = None  # the cookie value, when the viewer logged in through the form


def _mac(token: SecretStr, label: str) -> str:
    key = token.get_secret_value().encode("utf-8")
    return hmac.new(key, label.encode("utf-8"), hashlib.sha256).hexdigest()


def new_session(token: SecretStr, now: float) -> str:
    issued = int(now)
    return f"{issued}.{_mac(token, f'tamma-ui-session:{issued}')}"


def session_valid(token: SecretStr, value: str, now: float) -> bool:
    issued_text, _, mac = value.partition(".")
    if not (issued_text.isascii() and issued_text.isdigit()) or len(issued_text) > 12:
        return False
    issued = int(issued_text)
    if not issued - _CLOCK_SLACK <= now <= issued + SESSION_SECONDS:
        return False
    return token_matches(mac, _mac(token, f"tamma-ui-session:{issued}"))


def csrf_token(token: SecretStr, session: str) -> str:
    return _mac(token, f"tamma-ui-csrf:{session}")


def csrf_valid(token: SecretStr, session: str, given: str) -> bool:
    return token_matches(given, csrf_token(token, session))


def current_viewer(token: SecretStr | None, wall: Callable[[], float]) -> Viewer:
    """No token: everyone reads, nobody acts (read-only). A token: the session cookie or the
    bearer header grants both; neither grants nothing."""
    if token is None:
        return Viewer(can_read=True, can_act=False)
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie is not None and session_valid(token, cookie, wall()):
        return Viewer(can_read=True, can_act=True, session=cookie)
    bearer = bearer_credential(request.headers.get("Authorization"))
    if bearer is not None and token_matches(bearer, token.get_secret_value()):
        return Viewer(can_read=True, can_act=False)  # forms need a session for their CSRF token
    return Viewer(can_read=False, can_act=False)


def same_origin_post() -> bool:
    """False when the browser says the form came from another site (Origin header)."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return origin == f"{request.scheme}://{request.host}"


def safe_next(target: str | None, default: str) -> str:
    """Only a path of the dashboard itself: never an open redirect to another site."""
    if target and target.startswith("/ui") and "//" not in target and "\\" not in target:
        return target
    return default
