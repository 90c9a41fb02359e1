"""Credentials for git over HTTPS, passed through the environment only.

git reads ``GIT_CONFIG_COUNT`` / ``GIT_CONFIG_KEY_<n>`` / ``GIT_CONFIG_VALUE_<n>`` like ``-c``
options, so an ``http.<url>.extraHeader`` set this way authenticates the clone, fetch and push
without the token entering the remote URL, ``.git/config``, or an argv that ``ps`` shows to every
user. The header is scoped to the clone URL's scheme and host, so a submodule or a redirect to
another host never receives it. Forge-neutral: GitHub and GitLab both accept HTTP Basic with a
token as the password (the user name differs).
"""

from __future__ import annotations

import base64
from urllib.parse import urlsplit


def basic_auth_env(clone_url: str, username: str, token: str) -> dict[str, str]:
    """The environment that makes git send ``Authorization: Basic`` to ``clone_url``'s host.

    A clone URL that is not http(s) (a local path, as in tests of the local forge) needs no
    header: an empty environment is returned.
    """
    parts = urlsplit(clone_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return {}
    scope = f"{parts.scheme}://{parts.netloc}/"
    credentials = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{scope}.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {credentials}",
    }
