"""Pull requests, reviews, checks, statuses, merges and branch deletion of the fake GitHub.

Heads are read live from the bare repository (a push moves the pull request, as on GitHub), and
a merge is a real merge commit there, made with the local forge's git code.
"""

from __future__ import annotations

from typing import Any

import trio
from quart import Response, jsonify, request
from quart_trio import QuartTrio

from tamma_trio.engine.forge.local_git import BareRepository
from tamma_trio.engine.git import Git
from tests.fake_github.shapes import created, error, paginated
from tests.fake_github.state import FakeGitHub, FakeRepo


async def branch_sha(repo: FakeRepo, branch: str) -> str | None:
    done = await trio.run_process(
        ["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
        cwd=str(repo.bare),
        capture_stdout=True,
        check=False,
    )
    return done.stdout.decode().strip() if done.returncode == 0 else None


def register(app: QuartTrio, fake: FakeGitHub) -> None:
    def pull(owner: str, name: str, number: int) -> tuple[FakeRepo, dict[str, Any]] | Response:
        repo = fake.repos.get(f"{owner}/{name}")
        if repo is None or "head" not in repo.items.get(number, {}):
            return error(404, "Not Found")
        return repo, repo.items[number]

    async def view(repo: FakeRepo, data: dict[str, Any], *, ask: bool = True) -> dict[str, Any]:
        """The pull request with its live head and the next staged ``mergeable`` answer."""
        if data["state"] == "open":
            data["head"]["sha"] = await branch_sha(repo, data["head"]["ref"]) or data["head"]["sha"]
            answers = repo.mergeable.setdefault(data["number"], [True])
            data["mergeable"] = answers.pop(0) if ask and len(answers) > 1 else answers[0]
        return dict(data)

    @app.route("/repos/<owner>/<name>/pulls", methods=["GET", "POST"])
    async def pulls(owner: str, name: str) -> Response:
        repo = fake.repos.get(f"{owner}/{name}")
        if repo is None:
            return error(404, "Not Found")
        if request.method == "GET":
            head = request.args.get("head", "")
            state = request.args.get("state", "open")
            found = [
                await view(repo, data, ask=False)
                for data in repo.items.values()
                if "head" in data
                and (not head or head == f"{owner}:{data['head']['ref']}")
                and state in ("all", data["state"])
            ]
            return paginated(found)
        return await open_pull(repo, await request.get_json())

    async def open_pull(repo: FakeRepo, asked: dict[str, Any]) -> Response:
        sha = await branch_sha(repo, asked["head"])
        if sha is None:
            errors = [{"resource": "PullRequest", "field": "head", "code": "invalid"}]
            return error(422, "Validation Failed", errors=errors)
        for data in repo.items.values():
            if data.get("head", {}).get("ref") == asked["head"] and data["state"] == "open":
                message = f"A pull request already exists for {asked['head']}."
                errors = [{"resource": "PullRequest", "code": "custom", "message": message}]
                return error(422, "Validation Failed", errors=errors)
        number = repo.number()
        repo.items[number] = {
            "id": fake.serial(),
            "number": number,
            "title": asked["title"],
            "body": asked.get("body", ""),
            "state": "open",
            "user": fake.user(request.actor),  # type: ignore[attr-defined]
            "labels": [],
            "assignees": [],
            "head": {"ref": asked["head"], "sha": sha, "label": asked["head"]},
            "base": {"ref": asked["base"]},
            "merged": False,
            "merged_at": None,
            "merge_commit_sha": None,
            "html_url": f"{fake.base_url}/{repo.full_name}/pull/{number}",
        }
        return created(await view(repo, repo.items[number], ask=False))

    @app.get("/repos/<owner>/<name>/pulls/<int:number>")
    async def get_pull(owner: str, name: str, number: int) -> Response:
        found = pull(owner, name, number)
        if isinstance(found, Response):
            return found
        return jsonify(await view(*found))

    @app.get("/repos/<owner>/<name>/pulls/<int:number>/reviews")
    async def reviews(owner: str, name: str, number: int) -> Response:
        found = pull(owner, name, number)
        if isinstance(found, Response):
            return found
        return paginated(found[0].reviews.get(number, []))

    @app.put("/repos/<owner>/<name>/pulls/<int:number>/merge")
    async def merge(owner: str, name: str, number: int) -> Response:
        found = pull(owner, name, number)
        if isinstance(found, Response):
            return found
        repo, data = found
        asked = await request.get_json()
        current = await view(repo, data, ask=False)
        if data["state"] != "open" or current["mergeable"] is not True:
            return error(405, "Pull Request is not mergeable")
        if asked.get("sha") and asked["sha"] != current["head"]["sha"]:
            return error(409, "Head branch was modified. Review and try the merge again.")
        bare = BareRepository(repo.bare, repo.default_branch, Git(30))
        message = f"{asked.get('commit_title', '')}\n\n{asked.get('commit_message', '')}"
        sha = await bare.merge(current["head"]["sha"], message, "GitHub", "noreply@github.com")
        if sha is None:
            return error(405, "Pull Request is not mergeable")
        data.update(state="closed", merged=True, merged_at="now", merge_commit_sha=sha)
        return jsonify({"sha": sha, "merged": True, "message": "Pull Request successfully merged"})

    @app.get("/repos/<owner>/<name>/commits/<sha>/check-runs")
    async def check_runs(owner: str, name: str, sha: str) -> Response:
        repo = fake.repos.get(f"{owner}/{name}")
        if repo is None:
            return error(404, "Not Found")
        return paginated(repo.check_runs.get(sha, []), key="check_runs")

    @app.get("/repos/<owner>/<name>/commits/<sha>/status")
    async def combined_status(owner: str, name: str, sha: str) -> Response:
        repo = fake.repos.get(f"{owner}/{name}")
        if repo is None:
            return error(404, "Not Found")
        statuses = repo.statuses.get(sha, [])
        states = {s["state"] for s in statuses}
        state = "pending" if not statuses or "pending" in states else "success"
        if states & {"failure", "error"}:
            state = "failure"
        body = {"state": state, "sha": sha, "total_count": len(statuses), "statuses": statuses}
        return jsonify(body)

    @app.delete("/repos/<owner>/<name>/git/refs/heads/<path:branch>")
    async def delete_ref(owner: str, name: str, branch: str) -> Response:
        repo = fake.repos.get(f"{owner}/{name}")
        if repo is None:
            return error(404, "Not Found")
        if await branch_sha(repo, branch) is None:
            return error(422, "Reference does not exist")
        await trio.run_process(
            ["git", "update-ref", "-d", f"refs/heads/{branch}"], cwd=str(repo.bare), check=True
        )
        return Response("", status=204)
