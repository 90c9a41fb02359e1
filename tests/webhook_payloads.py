"""Webhook deliveries as the forges document them, trimmed to the fields that matter plus a few
neighbours, so the parser meets the real shapes (extra fields, nulls) and not our own echo.

GitHub: the examples of "Webhook events and payloads" (Codertocat/Hello-World, octocat).
GitLab: the examples of "Webhook events" (Issue, Note and Merge request events).
"""

from __future__ import annotations

import json
from typing import Any

from tamma_trio.intake.signatures import github_signature

REPO = "Codertocat/Hello-World"
BOT = "tamma"
SECRET = "It's a Secret to Everybody"


def user(login: str, kind: str = "User") -> dict[str, Any]:
    return {
        "login": login,
        "id": 21031067,
        "node_id": "MDQ6VXNlcjIxMDMxMDY3",
        "avatar_url": "https://avatars1.githubusercontent.com/u/21031067?v=4",
        "type": kind,
        "site_admin": False,
    }


def repository(full_name: str = REPO) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": 186853002,
        "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=",
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": user(owner),
        "html_url": f"https://github.com/{full_name}",
        "default_branch": "master",
    }


def issue(
    number: int = 1, *, pull: bool = False, title: str = "Spelling error in the README file"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "url": f"https://api.github.com/repos/{REPO}/issues/{number}",
        "id": 444500041,
        "number": number,
        "title": title,
        "user": user("Codertocat"),
        "labels": [{"id": 1362934389, "name": "bug", "color": "d73a4a", "default": True}],
        "state": "open",
        "locked": False,
        "assignee": user("Codertocat"),
        "assignees": [user("Codertocat")],
        "milestone": None,
        "comments": 0,
        "created_at": "2019-05-15T15:20:18Z",
        "author_association": "OWNER",
        "body": "It looks like you accidently spelled 'commit' with two 't's.",
    }
    if pull:
        body["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/{number}"}
    return body


def issues_event(
    action: str, *, number: int = 1, sender: str = "Codertocat", **extra: Any
) -> dict[str, Any]:
    return {
        "action": action,
        "issue": issue(number),
        "repository": repository(extra.pop("full_name", REPO)),
        "sender": user(sender),
        **extra,
    }


def assigned(assignee: str | None = BOT, **extra: Any) -> dict[str, Any]:
    return issues_event("assigned", assignee=None if assignee is None else user(assignee), **extra)


def labeled(label: str = "tamma", **extra: Any) -> dict[str, Any]:
    return issues_event("labeled", label={"id": 1, "name": label, "color": "ededed"}, **extra)


def comment_event(
    body: str,
    *,
    author: str = "Codertocat",
    association: str = "OWNER",
    kind: str = "User",
    pull: bool = False,
    number: int = 1,
    action: str = "created",
) -> dict[str, Any]:
    return {
        "action": action,
        "issue": issue(number, pull=pull),
        "comment": {
            "url": f"https://api.github.com/repos/{REPO}/issues/comments/492700400",
            "id": 492700400,
            "user": user(author, kind),
            "created_at": "2019-05-15T15:20:21Z",
            "author_association": association,
            "body": body,
        },
        "repository": repository(),
        "sender": user(author, kind),
    }


def pull_request(number: int = 2, author: str = BOT) -> dict[str, Any]:
    return {
        "url": f"https://api.github.com/repos/{REPO}/pulls/{number}",
        "id": 279147437,
        "number": number,
        "state": "open",
        "title": "Update the README with new information.",
        "user": user(author),
        "head": {
            "label": "Codertocat:changes",
            "ref": "changes",
            "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        },
        "base": {
            "label": "Codertocat:master",
            "ref": "master",
            "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
        },
    }


def review_requested(reviewer: str = BOT, *, team: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {
        "action": "review_requested",
        "number": 2,
        "pull_request": pull_request(),
        "repository": repository(),
        "sender": user("Codertocat"),
    }
    if team:
        event["requested_team"] = {"id": 1, "name": "reviewers", "slug": "reviewers"}
    else:
        event["requested_reviewer"] = user(reviewer)
    return event


def review_submitted(state: str = "approved", pr_author: str = BOT) -> dict[str, Any]:
    return {
        "action": "submitted",
        "review": {
            "id": 237895671,
            "user": user("Codertocat"),
            "body": None,
            "commit_id": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
            "submitted_at": "2019-05-15T15:20:38Z",
            "state": state,
            "author_association": "OWNER",
        },
        "pull_request": pull_request(author=pr_author),
        "repository": repository(),
        "sender": user("Codertocat"),
    }


def check_suite_completed(numbers: list[int], conclusion: str | None = "success") -> dict[str, Any]:
    return {
        "action": "completed",
        "check_suite": {
            "id": 118578147,
            "head_branch": "changes",
            "head_sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
            "status": "completed",
            "conclusion": conclusion,
            "pull_requests": [
                {
                    "url": f"https://api.github.com/repos/{REPO}/pulls/{n}",
                    "id": 279147437,
                    "number": n,
                }
                for n in numbers
            ],
            "app": {"id": 29310, "slug": "octocoders-linter"},
        },
        "repository": repository(),
        "sender": user("Codertocat"),
    }


def status_event(state: str, branches: list[str]) -> dict[str, Any]:
    return {
        "id": 6805126730,
        "sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "name": REPO,
        "context": "default",
        "state": state,
        "branches": [
            {"name": name, "commit": {"sha": "6113728f"}, "protected": False} for name in branches
        ],
        "repository": repository(),
        "sender": user("Codertocat"),
    }


def ping(hook_id: int = 30) -> dict[str, Any]:
    return {
        "zen": "Non-blocking is better than blocking.",
        "hook_id": hook_id,
        "hook": {
            "type": "Repository",
            "id": hook_id,
            "events": ["issues"],
            "config": {"content_type": "json"},
        },
        "repository": repository(),
        "sender": user("Codertocat"),
    }


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def github_headers(
    body: bytes, event: str, delivery: str, *, secret: str | None = SECRET
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": "292430182",
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = github_signature(secret, body)
    return headers


# --- GitLab ---------------------------------------------------------------------------------

GITLAB_REPO = "gitlabhq/gitlab-test"
TOKEN = "gitlab-hook-token-0123456789"


def gl_user(username: str) -> dict[str, Any]:
    return {
        "id": 1,
        "name": username.title(),
        "username": username,
        "avatar_url": "http://www.gravatar.com/avatar/x",
        "email": "admin@example.com",
    }


def gl_project(path: str = GITLAB_REPO) -> dict[str, Any]:
    return {
        "id": 1,
        "name": path.split("/")[1],
        "web_url": f"http://example.com/{path}",
        "path_with_namespace": path,
        "default_branch": "master",
    }


def gl_issue_hook(
    *,
    assignees: tuple[list[str], list[str]] | None = None,
    labels: tuple[list[str], list[str]] | None = None,
    action: str = "update",
    iid: int = 23,
    sender: str = "root",
) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "updated_at": {"previous": "2017-09-15 16:50:55 UTC", "current": "2017-09-15 16:52:00 UTC"}
    }
    if assignees is not None:
        changes["assignees"] = {
            "previous": [gl_user(u) for u in assignees[0]],
            "current": [gl_user(u) for u in assignees[1]],
        }
    if labels is not None:
        changes["labels"] = {
            "previous": [{"id": 206, "title": t} for t in labels[0]],
            "current": [{"id": 206, "title": t} for t in labels[1]],
        }
    return {
        "object_kind": "issue",
        "event_type": "issue",
        "user": gl_user(sender),
        "project": gl_project(),
        "object_attributes": {
            "id": 301,
            "iid": iid,
            "title": "New API: create/update/delete file",
            "state": "opened",
            "action": action,
            "description": "Create new API for manipulations with repository",
        },
        "assignees": [gl_user(u) for u in (assignees[1] if assignees else [])],
        "labels": [{"id": 206, "title": t} for t in (labels[1] if labels else [])],
        "changes": changes,
    }


def gl_note_hook(
    note: str, *, author: str = "root", on: str = "Issue", iid: int = 23
) -> dict[str, Any]:
    hook: dict[str, Any] = {
        "object_kind": "note",
        "event_type": "note",
        "user": gl_user(author),
        "project_id": 5,
        "project": gl_project(),
        "object_attributes": {
            "id": 1241,
            "note": note,
            "noteable_type": on,
            "author_id": 1,
            "created_at": "2015-05-17 17:06:40 UTC",
        },
    }
    if on == "Issue":
        hook["issue"] = {"id": 92, "iid": iid, "title": "test", "state": "closed"}
    elif on == "MergeRequest":
        hook["merge_request"] = {
            "id": 7,
            "iid": iid,
            "title": "Tempora et eos debitis quae laborum et.",
            "state": "opened",
        }
    return hook


def gl_merge_request_hook(
    reviewers: tuple[list[str], list[str]] | None, *, action: str = "update", iid: int = 1
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if reviewers is not None:
        changes["reviewers"] = {
            "previous": [gl_user(u) for u in reviewers[0]],
            "current": [gl_user(u) for u in reviewers[1]],
        }
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": gl_user("root"),
        "project": gl_project(),
        "object_attributes": {
            "id": 99,
            "iid": iid,
            "title": "MS-Viewport",
            "state": "opened",
            "action": action,
            "source_branch": "ms-viewport",
            "target_branch": "master",
        },
        "reviewers": [gl_user(u) for u in (reviewers[1] if reviewers else [])],
        "changes": changes,
    }


def gitlab_headers(
    event: str,
    *,
    token: str | None = TOKEN,
    key: str | None = "a1b2c3d4-0000-4000-8000-000000000001",
    uuid: str | None = None,
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": event,
        "X-Gitlab-Instance": "https://gitlab.example.com",
        "X-Gitlab-Webhook-UUID": "2ebdb7e4-1b2c-4d5e-8f90-123456789abc",
    }
    if token is not None:
        headers["X-Gitlab-Token"] = token
    if key is not None:
        headers["Idempotency-Key"] = key
    if uuid is not None:
        headers["X-Gitlab-Event-UUID"] = uuid
    return headers
