"""The fake GitLab's HTTP side: /api/v4 in GitLab's documented shapes, its token rules, its
RateLimit headers and staged faults, and git over smart HTTP at each project's http_url_to_repo.

Projects are addressed by URL-encoded full path (``acme%2Fdemo``); the server sees it decoded,
so the known project whose path prefixes the rest of the URL is the one meant.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from functools import partial

from quart import Response, request
from quart_trio import QuartTrio

from tests.fake_github import git_http
from tests.fake_gitlab import routes
from tests.fake_gitlab.shapes import answer, error, paginated
from tests.fake_gitlab.state import FakeGitLab, FakeProject

Handler = Callable[..., Awaitable[Response]]


def create_app(fake: FakeGitLab) -> QuartTrio:
    app = QuartTrio("fake_gitlab")
    app.config["MAX_CONTENT_LENGTH"] = None
    table = routes.table(fake)

    @app.before_request
    async def gate() -> Response | None:
        fault = fake.take_fault(request.method, request.path)
        if fault is not None:
            response = answer(fault.body, fault.status)
            response.headers.update(fault.headers)
            return response
        if request.path.startswith("/git/"):
            return None
        token = request.headers.get("PRIVATE-TOKEN", "")
        if token not in fake.tokens:
            return error(401, "401 Unauthorized")
        request.actor = fake.tokens[token]  # type: ignore[attr-defined]
        return None

    @app.after_request
    async def account(response: Response) -> Response:
        fake.log.append((request.method, request.path, response.status_code))
        if request.path.startswith("/api/") and "RateLimit-Remaining" not in response.headers:
            fake.remaining = max(fake.remaining - 1, 0)
            response.headers["RateLimit-Limit"] = "2000"
            response.headers["RateLimit-Remaining"] = str(fake.remaining)
            response.headers["RateLimit-Reset"] = str(int(fake.wall()) + 60)
        return response

    @app.route("/git/<path:rest>", methods=["GET", "POST"])
    async def git(rest: str) -> Response:
        found = _project_of(fake, rest, suffix=".git")
        if found is None:
            return Response("not found", status=404)
        project, tail = found
        valid = partial(_token_valid, fake)
        return await git_http.serve_git(fake.git_auth, valid, project.bare, tail)

    @app.get("/api/v4/user")
    async def user() -> Response:
        return answer(fake.user(request.actor))  # type: ignore[attr-defined]

    @app.get("/api/v4/users")
    async def users() -> Response:
        name = request.args.get("username", "")
        return paginated([fake.user(name)] if name in fake.users else [])

    @app.route("/api/v4/projects/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
    async def project_route(rest: str) -> Response:
        found = _project_of(fake, rest)
        if found is None:
            return error(404, "404 Project Not Found")
        project, tail = found
        for (method, pattern), handler in table.items():
            match = re.fullmatch(pattern, tail)
            if method == request.method and match:
                return await handler(project, *match.groups())
        return error(404, "404 Not Found")

    return app


def _project_of(fake: FakeGitLab, rest: str, suffix: str = "") -> tuple[FakeProject, str] | None:
    """The project whose path (plus ``suffix``) starts ``rest``, and what follows it."""
    for path in sorted(fake.projects, key=len, reverse=True):
        head = path + suffix
        if rest == head or rest.startswith(head + "/"):
            return fake.projects[path], rest[len(head) :].lstrip("/")
    return None


def _token_valid(fake: FakeGitLab, token: str) -> bool:
    return token in fake.tokens
