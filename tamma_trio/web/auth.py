"""Who may read and change tasks: a bearer token when one is configured, else loopback only.

Without a token the daemon cannot tell a colleague from an attacker, so it lets only its own
host change tasks; once a token is set, it is required from everyone, loopback included, for
reads too, since payloads and event histories are the repositories' business. (A daemon that
binds beyond loopback without a token refuses to start unless told to: see config.py.)
"""

from __future__ import annotations

import hmac
import ipaddress

from pydantic import SecretStr
from quart import request

from tamma_trio.web.errors import ApiError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tamma"'}


def is_loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything unparseable."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def bearer_credential(header: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header, else None."""
    if not header:
        return None
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def token_matches(given: str, expected: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str and a header may carry anything.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def require_read_allowed(token: SecretStr | None) -> None:
    """Raise ApiError 401 unless the current request may read tasks: the token when one is set."""
    if token is not None:
        require_token(token)


def require_mutation_allowed(token: SecretStr | None) -> None:
    """Raise ApiError (401 or 403) unless the current request may change tasks."""
    if token is None:
        if not is_loopback(request.remote_addr):
            raise ApiError(
                403,
                "forbidden",
                "mutating calls are accepted from loopback clients only while no "
                "[service.api] token is configured",
            )
        return
    require_token(token)


def require_token(token: SecretStr) -> None:
    credential = bearer_credential(request.headers.get("Authorization"))
    if credential is None:
        raise ApiError(
            401, "unauthorized", "missing 'Authorization: Bearer <token>'", headers=_CHALLENGE
        )
    if not token_matches(credential, token.get_secret_value()):
        raise ApiError(401, "unauthorized", "invalid token", headers=_CHALLENGE)
