"""The fake GitHub's HTTP side: the REST routes the forge uses, in GitHub's documented shapes,
with its authentication rules, rate-limit headers, Link pagination and staged faults."""

from __future__ import annotations

import jwt
from quart import Response, jsonify, request
from quart_trio import QuartTrio

from tests.fake_github import git_http, routes_issues, routes_pulls
from tests.fake_github.shapes import error, iso
from tests.fake_github.state import APP_SLUG, FakeGitHub


def create_app(fake: FakeGitHub) -> QuartTrio:
    app = QuartTrio("fake_github")
    app.config["MAX_CONTENT_LENGTH"] = None

    @app.before_request
    async def gate() -> Response | None:
        fault = fake.take_fault(request.method, request.path)
        if fault is not None:
            response = jsonify(fault.body)
            response.status_code = fault.status
            response.headers.update(fault.headers)
            return response
        if request.path.startswith("/git/"):
            return None
        actor = _actor(fake, request.headers.get("Authorization", ""))
        if actor is None:
            return error(401, "Bad credentials")
        request.actor = actor  # type: ignore[attr-defined]
        return None

    @app.after_request
    async def account(response: Response) -> Response:
        fake.log.append((request.method, request.path, response.status_code))
        if not request.path.startswith("/git/") and "x-ratelimit-remaining" not in response.headers:
            fake.remaining = max(fake.remaining - 1, 0)
            response.headers["x-ratelimit-limit"] = "5000"
            response.headers["x-ratelimit-remaining"] = str(fake.remaining)
            response.headers["x-ratelimit-reset"] = str(int(fake.wall()) + 3600)
            response.headers["x-ratelimit-resource"] = "core"
        return response

    @app.route("/git/<owner>/<repo_git>/<path:rest>", methods=["GET", "POST"])
    async def git(owner: str, repo_git: str, rest: str) -> Response:
        repo = fake.repos.get(f"{owner}/{repo_git.removesuffix('.git')}")
        if repo is None:
            return Response("not found", status=404)
        return await git_http.serve_git(fake, repo.bare, rest)

    @app.get("/user")
    async def user() -> Response:
        return jsonify(fake.user(request.actor))  # type: ignore[attr-defined]

    @app.get("/app")
    async def the_app() -> Response:
        if request.actor != "app":  # type: ignore[attr-defined]
            return error(401, "A JSON web token could not be decoded")
        return jsonify({"id": fake.app_id, "slug": APP_SLUG, "name": "Tamma App"})

    @app.get("/repos/<owner>/<name>/installation")
    async def installation(owner: str, name: str) -> Response:
        repo = fake.repos.get(f"{owner}/{name}")
        if request.actor != "app" or repo is None:  # type: ignore[attr-defined]
            return error(404, "Not Found")
        return jsonify({"id": repo.installation_id, "app_id": fake.app_id})

    @app.post("/app/installations/<int:number>/access_tokens")
    async def access_token(number: int) -> Response:
        if request.actor != "app":  # type: ignore[attr-defined]
            return error(401, "A JSON web token could not be decoded")
        token = f"ghs_fake{fake.serial()}"
        expires = fake.wall() + fake.token_lifetime
        fake.installation_tokens[token] = (number, expires)
        response = jsonify({"token": token, "expires_at": iso(expires), "permissions": {}})
        response.status_code = 201
        return response

    @app.get("/repos/<owner>/<name>")
    async def repository(owner: str, name: str) -> Response:
        repo = fake.repos.get(f"{owner}/{name}")
        if repo is None:
            return error(404, "Not Found")
        return jsonify(
            {
                "full_name": repo.full_name,
                "name": name,
                "private": True,
                "default_branch": repo.default_branch,
                "clone_url": f"{fake.base_url}/git/{repo.full_name}.git",
                "html_url": f"{fake.base_url}/{repo.full_name}",
            }
        )

    routes_issues.register(app, fake)
    routes_pulls.register(app, fake)
    return app


def _actor(fake: FakeGitHub, header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token:
        return None
    if token in fake.tokens:
        return fake.tokens[token]
    installation = fake.installation_tokens.get(token)
    if installation is not None:
        return f"{APP_SLUG}[bot]" if installation[1] > fake.wall() else None
    try:
        claims = jwt.decode(token, fake.app_public_key, algorithms=["RS256"])
    except (jwt.PyJWTError, ValueError):
        return None
    return "app" if str(claims.get("iss")) == str(fake.app_id) else None
