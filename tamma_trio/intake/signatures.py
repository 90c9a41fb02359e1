"""Is a delivery from the forge? Checked on the raw bytes, before anything is parsed.

GitHub signs the body: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``; the legacy
SHA-1 header is never accepted. GitLab sends the shared token itself in ``X-Gitlab-Token``. Every
configured secret is tried (rotation) and every comparison is constant-time; with no secret
configured nothing verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr

_PREFIX = "sha256="


def github_signature(secret: str, body: bytes) -> str:
    """The header value GitHub sends for ``body`` (tests and the benchmark sign with it too)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def github_verified(body: bytes, header: str | None, secrets: Sequence[SecretStr]) -> bool:
    if header is None or not header.startswith(_PREFIX):
        return False
    given = header.encode("utf-8", "replace")
    matched = False
    for secret in secrets:  # no early exit: the time does not tell which secret matched
        expected = github_signature(secret.get_secret_value(), body).encode("ascii")
        matched |= hmac.compare_digest(expected, given)
    return matched


def gitlab_verified(header: str | None, tokens: Sequence[SecretStr]) -> bool:
    if header is None:
        return False
    given = header.encode("utf-8", "replace")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(token.get_secret_value().encode("utf-8"), given)
    return matched


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
