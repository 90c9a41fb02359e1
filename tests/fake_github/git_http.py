"""Git's smart HTTP for the fake: `git http-backend` as a CGI program, behind the same token
check GitHub applies (HTTP Basic, the token as password), so a clone or push through the fake
proves the engine's credentials travel in the environment's extra header."""

from __future__ import annotations

import base64
from pathlib import Path

import trio
from quart import Response, request

from tests.fake_github.state import FakeGitHub


def basic_token(header: str) -> str | None:
    if not header.lower().startswith("basic "):
        return None
    try:
        _user, _, token = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return token


async def serve_git(fake: FakeGitHub, bare: Path, rest: str) -> Response:
    header = request.headers.get("Authorization", "")
    fake.git_auth.append(header)
    token = basic_token(header)
    if token is None or not token_valid(fake, token):
        return Response(
            "auth required", status=401, headers={"WWW-Authenticate": 'Basic realm="GitHub"'}
        )
    data = await request.get_data(as_text=False)
    body = data.encode() if isinstance(data, str) else data
    env = {
        "GIT_PROJECT_ROOT": str(bare.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{bare.name}/{rest}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.query_string.decode(),
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "HTTP_CONTENT_ENCODING": request.headers.get("Content-Encoding", ""),
        "HTTP_GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
        "REMOTE_USER": "x-access-token",  # http-backend refuses pushes from nobody
        "REMOTE_ADDR": "127.0.0.1",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = await trio.run_process(
        ["git", "http-backend"], stdin=body, env=env, capture_stdout=True, check=False
    )
    head, _, payload = done.stdout.partition(b"\r\n\r\n")
    status, headers = 200, {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        elif name:
            headers[name] = value.strip()
    return Response(payload, status=status, headers=headers)


def token_valid(fake: FakeGitHub, token: str) -> bool:
    if token in fake.tokens:
        return True
    installation = fake.installation_tokens.get(token)
    return installation is not None and installation[1] > fake.wall()
