"""Issues, comments, labels, assignees and collaborator permissions of the fake GitHub."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify, request
from quart_trio import QuartTrio

from tests.fake_github.shapes import created, error, iso, paginated
from tests.fake_github.state import FakeGitHub, FakeRepo

LEGACY = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}


def register(app: QuartTrio, fake: FakeGitHub) -> None:
    def item(owner: str, name: str, number: int) -> tuple[FakeRepo, dict[str, Any]] | Response:
        repo = fake.repos.get(f"{owner}/{name}")
        if repo is None or number not in repo.items:
            return error(404, "Not Found")
        return repo, repo.items[number]

    def issue_view(repo: FakeRepo, data: dict[str, Any]) -> dict[str, Any]:
        """A pull request seen through the issues API carries a ``pull_request`` key."""
        view = {k: v for k, v in data.items() if k not in ("head", "base", "merged", "mergeable")}
        if "head" in data:
            view["pull_request"] = {"url": f"{fake.base_url}/{repo.full_name}/pull/"}
        return view

    @app.route("/repos/<owner>/<name>/issues/<int:number>", methods=["GET", "PATCH"])
    async def issue(owner: str, name: str, number: int) -> Response:
        found = item(owner, name, number)
        if isinstance(found, Response):
            return found
        repo, data = found
        if request.method == "PATCH":
            change = await request.get_json()
            for key in ("state", "state_reason", "title", "body"):
                if key in change:
                    data[key] = change[key]
        return jsonify(issue_view(repo, data))

    @app.route("/repos/<owner>/<name>/issues/<int:number>/comments", methods=["GET", "POST"])
    async def comments(owner: str, name: str, number: int) -> Response:
        found = item(owner, name, number)
        if isinstance(found, Response):
            return found
        repo, _data = found
        listed = repo.comments.setdefault(number, [])
        if request.method == "GET":
            return paginated(listed)
        body = (await request.get_json())["body"]
        fake.writes_entered += 1
        if fake.write_gate is not None:
            await fake.write_gate.wait()
        comment = {
            "id": fake.serial(),
            "body": body,
            "user": fake.user(request.actor),  # type: ignore[attr-defined]
            "created_at": iso(fake.wall()),
        }
        listed.append(comment)
        return created(comment)

    @app.post("/repos/<owner>/<name>/issues/<int:number>/labels")
    async def add_labels(owner: str, name: str, number: int) -> Response:
        found = item(owner, name, number)
        if isinstance(found, Response):
            return found
        repo, data = found
        for label in (await request.get_json())["labels"]:
            repo.labels.add(label)
            if label not in [x["name"] for x in data["labels"]]:
                data["labels"].append(fake.label(label))
        return jsonify(data["labels"])

    @app.delete("/repos/<owner>/<name>/issues/<int:number>/labels/<label>")
    async def remove_label(owner: str, name: str, number: int, label: str) -> Response:
        found = item(owner, name, number)
        if isinstance(found, Response):
            return found
        _repo, data = found
        kept = [x for x in data["labels"] if x["name"] != label]
        if len(kept) == len(data["labels"]):
            return error(404, "Label does not exist")
        data["labels"] = kept
        return jsonify(kept)

    @app.post("/repos/<owner>/<name>/labels")
    async def create_label(owner: str, name: str) -> Response:
        repo = fake.repos.get(f"{owner}/{name}")
        if repo is None:
            return error(404, "Not Found")
        label = (await request.get_json())["name"]
        if label in repo.labels:
            errors = [{"resource": "Label", "code": "already_exists", "field": "name"}]
            return error(422, "Validation Failed", errors=errors)
        repo.labels.add(label)
        return created(fake.label(label))

    @app.post("/repos/<owner>/<name>/issues/<int:number>/assignees")
    async def assign(owner: str, name: str, number: int) -> Response:
        found = item(owner, name, number)
        if isinstance(found, Response):
            return found
        repo, data = found
        for login in (await request.get_json())["assignees"]:
            if login not in [x["login"] for x in data["assignees"]]:
                data["assignees"].append(fake.user(login))
        return created(issue_view(repo, data))

    @app.get("/repos/<owner>/<name>/collaborators/<login>/permission")
    async def permission(owner: str, name: str, login: str) -> Response:
        repo = fake.repos.get(f"{owner}/{name}")
        if repo is None:
            return error(404, "Not Found")
        role = repo.collaborators.get(login)
        if role is None:
            return error(404, f"{login} is not a user")
        legacy = LEGACY.get(role, "none")
        return jsonify({"permission": legacy, "role_name": role, "user": fake.user(login)})
