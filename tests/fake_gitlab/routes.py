"""The project routes of the fake GitLab: issues, notes, labels, merge requests, approvals,
merges, branches and members. Merge request heads are read live from the bare repository and a
merge is a real merge commit there, made with the local forge's git code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import Response, request

from tamma_trio.engine.forge.local_git import BareRepository
from tamma_trio.engine.git import Git
from tests.fake_gitlab.shapes import answer, error, paginated
from tests.fake_gitlab.state import FakeGitLab, FakeProject

Handler = Callable[..., Awaitable[Response]]
OPEN_STATES = {"opened": "opened", "closed": "closed", "merged": "merged"}


def _next(answers: list[str]) -> str:
    """The next staged answer; the last one repeats."""
    return answers.pop(0) if len(answers) > 1 else answers[0]


def table(fake: FakeGitLab) -> dict[tuple[str, str], Handler]:
    async def project(p: FakeProject) -> Response:
        return answer(
            {
                "id": p.id,
                "path_with_namespace": p.path,
                "default_branch": p.default_branch,
                "http_url_to_repo": f"{fake.base_url}/git/{p.path}.git",
                "web_url": f"{fake.base_url}/{p.path}",
            }
        )

    async def get_issue(p: FakeProject, iid: str) -> Response:
        issue = p.issues.get(int(iid))
        return answer(issue) if issue else error(404, "404 Issue Not Found")

    async def put_issue(p: FakeProject, iid: str) -> Response:
        issue = p.issues.get(int(iid))
        if issue is None:
            return error(404, "404 Issue Not Found")
        _edit(fake, issue, await request.get_json())
        return answer(issue)

    async def notes_of(items: list[dict[str, Any]], noteable_type: str) -> Response:
        if request.method == "GET":
            return paginated(items)
        note = {
            "id": fake.next_note_id(),
            "body": (await request.get_json())["body"],
            "author": fake.user(request.actor),  # type: ignore[attr-defined]
            "created_at": "2026-01-01T00:00:00.000Z",
            "system": False,
            "noteable_type": noteable_type,
        }
        items.append(note)
        return answer(note, 201)

    async def notes(p: FakeProject, iid: str) -> Response:
        if int(iid) not in p.issues:
            return error(404, "404 Issue Not Found")
        return await notes_of(p.notes.setdefault(int(iid), []), "Issue")

    async def mr_notes(p: FakeProject, iid: str) -> Response:
        if int(iid) not in p.merge_requests:
            return error(404, "404 Not found")
        return await notes_of(p.mr_notes.setdefault(int(iid), []), "MergeRequest")

    async def labels(p: FakeProject) -> Response:
        name = (await request.get_json())["name"]
        if name in p.labels:
            return error(409, "Label already exists")
        p.labels.add(name)
        return answer({"id": len(p.labels), "name": name, "color": "#ededed"}, 201)

    async def view(p: FakeProject, mr: dict[str, Any], *, ask: bool = True) -> dict[str, Any]:
        if mr["state"] == "opened":
            mr["sha"] = await branch_sha_of(p, mr["source_branch"]) or mr["sha"]
            statuses = p.merge_statuses.setdefault(mr["iid"], ["mergeable"])
            mr["detailed_merge_status"] = _next(statuses) if ask else statuses[0]
            runs = p.pipelines.get(mr["sha"])
            status = (_next(runs) if ask else runs[0]) if runs else None
            mr["head_pipeline"] = {"id": 1, "sha": mr["sha"], "status": status} if runs else None
        return dict(mr)

    async def merge_requests(p: FakeProject) -> Response:
        if request.method == "GET":
            source = request.args.get("source_branch", "")
            state = request.args.get("state", "all")
            found = [
                await view(p, mr, ask=False)
                for mr in p.merge_requests.values()
                if (not source or mr["source_branch"] == source) and state in ("all", mr["state"])
            ]
            return paginated(found)
        return await open_mr(p, await request.get_json())

    async def open_mr(p: FakeProject, asked: dict[str, Any]) -> Response:
        sha = await branch_sha_of(p, asked["source_branch"])
        if sha is None:
            return answer({"message": ["Source branch does not exist"]}, 422)
        for mr in p.merge_requests.values():
            if mr["source_branch"] == asked["source_branch"] and mr["state"] == "opened":
                message = "Another open merge request already exists for this source branch"
                return answer({"message": [message]}, 409)
        iid = p.next_mr
        p.next_mr += 1
        p.merge_requests[iid] = {
            "id": 7000 + iid,
            "iid": iid,
            "title": asked["title"],
            "description": asked.get("description", ""),
            "state": "opened",
            "source_branch": asked["source_branch"],
            "target_branch": asked["target_branch"],
            "sha": sha,
            "labels": [x for x in asked.get("labels", "").split(",") if x],
            "author": fake.user(request.actor),  # type: ignore[attr-defined]
            "merge_commit_sha": None,
            "web_url": f"{fake.base_url}/{p.path}/-/merge_requests/{iid}",
        }
        return answer(await view(p, p.merge_requests[iid], ask=False), 201)

    async def get_mr(p: FakeProject, iid: str) -> Response:
        mr = p.merge_requests.get(int(iid))
        return answer(await view(p, mr)) if mr else error(404, "404 Not found")

    async def put_mr(p: FakeProject, iid: str) -> Response:
        mr = p.merge_requests.get(int(iid))
        if mr is None:
            return error(404, "404 Not found")
        _edit(fake, mr, await request.get_json())
        return answer(await view(p, mr, ask=False))

    async def approvals(p: FakeProject, iid: str) -> Response:
        names = p.approvals.get(int(iid), [])
        approved_by = [{"user": fake.user(name)} for name in names]
        return answer({"iid": int(iid), "approved": bool(names), "approved_by": approved_by})

    async def reviewers(p: FakeProject, iid: str) -> Response:
        """GET .../reviewers: each reviewer's state (unreviewed, reviewed, requested_changes,
        approved...), as GitLab 17 reports it."""
        if int(iid) not in p.merge_requests:
            return error(404, "404 Not found")
        entries = [
            {
                "user": fake.user(name),
                "updated_state_by": fake.user(name),
                "state": state,
                "created_at": "2026-01-01T00:00:00.000Z",
            }
            for name, state in p.reviewers.get(int(iid), {}).items()
        ]
        return paginated(entries)

    async def merge(p: FakeProject, iid: str) -> Response:
        mr = p.merge_requests.get(int(iid))
        if mr is None:
            return error(404, "404 Not found")
        asked = await request.get_json()
        current = await view(p, mr, ask=False)
        if mr["state"] != "opened" or current["detailed_merge_status"] != "mergeable":
            return error(405, "405 Method Not Allowed")
        if asked.get("sha") and asked["sha"] != current["sha"]:
            return error(409, "SHA does not match HEAD of source branch")
        bare = BareRepository(p.bare, p.default_branch, Git(30))
        message = asked.get("merge_commit_message") or asked.get("squash_commit_message") or "x"
        sha = await bare.merge(current["sha"], message, "GitLab", "noreply@gitlab.com")
        if sha is None:
            return error(422, "Branch cannot be merged")
        mr.update(state="merged", merge_commit_sha=sha)
        if asked.get("should_remove_source_branch"):
            await bare.delete_branch(mr["source_branch"])
        return answer(mr)

    async def delete_branch(p: FakeProject, branch: str) -> Response:
        if await branch_sha_of(p, branch) is None:
            return error(404, "404 Branch Not Found")
        await BareRepository(p.bare, p.default_branch, Git(30)).delete_branch(branch)
        return Response("", status=204)

    async def member(p: FakeProject, user_id: str) -> Response:
        by_id = {uid: name for name, uid in fake.users.items()}
        name = by_id.get(int(user_id), "")
        if name not in p.members:
            return error(404, "404 Not found")
        return answer({**fake.user(name), "access_level": p.members[name]})

    return {
        ("GET", r""): project,
        ("GET", r"issues/(\d+)"): get_issue,
        ("PUT", r"issues/(\d+)"): put_issue,
        ("GET", r"issues/(\d+)/notes"): notes,
        ("POST", r"issues/(\d+)/notes"): notes,
        ("GET", r"merge_requests/(\d+)/notes"): mr_notes,
        ("POST", r"merge_requests/(\d+)/notes"): mr_notes,
        ("POST", r"labels"): labels,
        ("GET", r"merge_requests"): merge_requests,
        ("POST", r"merge_requests"): merge_requests,
        ("GET", r"merge_requests/(\d+)"): get_mr,
        ("PUT", r"merge_requests/(\d+)"): put_mr,
        ("GET", r"merge_requests/(\d+)/approvals"): approvals,
        ("GET", r"merge_requests/(\d+)/reviewers"): reviewers,
        ("PUT", r"merge_requests/(\d+)/merge"): merge,
        ("DELETE", r"repository/branches/(.+)"): delete_branch,
        ("GET", r"members/all/(\d+)"): member,
    }


async def branch_sha_of(p: FakeProject, branch: str) -> str | None:
    return await BareRepository(p.bare, p.default_branch, Git(30)).branch_sha(branch)


def _edit(fake: FakeGitLab, item: dict[str, Any], asked: dict[str, Any]) -> None:
    """PUT on an issue or a merge request: labels, assignees and closing work alike."""
    _edit_labels(item, asked)
    if "assignee_ids" in asked:
        by_id = {uid: name for name, uid in fake.users.items()}
        item["assignees"] = [fake.user(by_id[uid]) for uid in asked["assignee_ids"]]
    if asked.get("state_event") == "close":
        item["state"] = "closed"


def _edit_labels(item: dict[str, Any], asked: dict[str, Any]) -> None:
    add = [x for x in asked.get("add_labels", "").split(",") if x]
    remove = set(asked.get("remove_labels", "").split(","))
    item["labels"] = [x for x in item["labels"] if x not in remove] + [
        x for x in add if x not in item["labels"]
    ]
