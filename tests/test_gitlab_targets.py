"""GitLab numbers issues and merge requests apart: issue #1 and merge request !1 are two objects.

What the bot says or labels about a merge request lands on the merge request, its tasks have
their own subject (so closing !1 never cancels the work on #1), and a fresh merge request of the
bot's gets its first look when its pipeline turns green."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tamma_trio.config import ServiceConfig
from tamma_trio.handlers import Handlers
from tamma_trio.models import NewTask, Task, TaskStatus
from tamma_trio.policy import Failure
from tamma_trio.step_records import Target
from tamma_trio.store.memory import MemoryStore
from tamma_trio.store.sqlite import SqliteStore
from tests import webhook_payloads as gl
from tests.fake_gitlab import FakeGitLab, serving
from tests.gitlab_helpers import BOT, PROJECT, fake_with_project, make_forge, push_to
from tests.test_gitlab_engine import engine_for
from tests.test_webhooks_gitlab import Hook
from tests.web_fixtures import OpenMemoryStore


async def issue_and_mr_one(fake: FakeGitLab, tmp_path: Path) -> None:
    """Issue #1 and merge request !1 of the same project, each with one human note."""
    assert fake.add_issue(PROJECT, "The issue") == 1
    push_to(fake.projects[PROJECT].bare, tmp_path, "feature")
    forge, _ = make_forge(fake)
    mr = await forge.open_pull_request(
        PROJECT, title="Someone's MR", body="", head_branch="feature", base="main", author="bob"
    )
    await forge.aclose()
    assert mr.number == 1
    project = fake.projects[PROJECT]
    project.notes[1] = [note("on the issue")]
    project.mr_notes[1] = [note("on the MR")]


def note(body: str) -> dict[str, Any]:
    return {"id": 1, "body": body, "author": {"username": "alice"}, "system": False}


async def test_comments_and_labels_for_the_mr_land_on_the_mr(tmp_path: Path) -> None:
    fake = fake_with_project(tmp_path)
    mr = Target(repository=PROJECT, number=1, kind="pull_request")
    async with serving(fake):
        await issue_and_mr_one(fake, tmp_path)
        forge, _ = make_forge(fake)
        seen = [c.body for c in await forge.list_comments(mr)]
        await forge.comment(mr, "for the merge request", BOT)
        await forge.add_labels(mr, ("needs-human-review", "x"))
        await forge.remove_label(mr, "x")
        await forge.assign(mr, BOT)
        await forge.close_issue(mr)
        await forge.aclose()
    project = fake.projects[PROJECT]
    assert seen == ["on the MR"]
    assert [n["body"] for n in project.mr_notes[1]] == ["on the MR", "for the merge request"]
    merge_request = project.merge_requests[1]
    assert merge_request["labels"] == ["needs-human-review"] and merge_request["state"] == "closed"
    assert [a["username"] for a in merge_request["assignees"]] == [BOT]
    issue = project.issues[1]  # the issue with the same number is untouched
    assert [n["body"] for n in project.notes[1]] == ["on the issue"]
    assert issue["labels"] == [] and issue["assignees"] == [] and issue["state"] == "opened"


async def claimed(store: MemoryStore, type_name: str, payload: dict[str, Any]) -> Task:
    await store.add(NewTask.build(type_name, payload))
    [task] = await store.claim(1)
    return task


async def test_an_mr_tasks_escalation_lands_on_the_mr_not_the_issue(tmp_path: Path) -> None:
    """The path a failed pull request task takes: handlers -> workflow engine -> GitLab."""
    fake = fake_with_project(tmp_path)
    async with MemoryStore() as store, serving(fake):
        await issue_and_mr_one(fake, tmp_path)
        engine = engine_for(tmp_path, fake)
        async with engine:
            handlers = Handlers(engine, store, ServiceConfig(bot_name=BOT))
            payload = {"repository": PROJECT, "pull_request": {"number": 1}}
            task = await claimed(store, "pr_review_requested", payload)
            await handlers.escalate(task, Failure("forge_down", "the forge is down", True))
    project = fake.projects[PROJECT]
    [said] = [n["body"] for n in project.mr_notes[1] if n["author"]["username"] == BOT]
    assert "the forge is down" in said and "needs-human-review" in project.labels
    assert project.merge_requests[1]["labels"] == ["needs-human-review"]
    assert [n["body"] for n in project.notes[1]] == ["on the issue"]
    assert project.issues[1]["labels"] == []


def stored_target(kind: str | None) -> Target:
    raw = {"repository": PROJECT, "number": 1, **({"kind": kind} if kind else {})}
    return Target.model_validate(raw)


def test_a_target_stored_before_kinds_existed_is_an_issue() -> None:
    assert stored_target(None).kind == "issue"
    assert stored_target("pull_request").kind == "pull_request"


# --- intake: the subjects of #1 and !1 ------------------------------------------------------


async def finish(hook: Hook, new: NewTask, result: dict[str, Any] | None) -> Task:
    """Store ``new`` and, with a result, complete it as the handler would have."""
    task, _ = await hook.store.add(new)
    if result is None:
        return task
    [claimed_task] = await hook.store.claim(1)
    assert claimed_task.id == task.id
    await hook.store.complete(task.id, claimed_task.lease_token or "", result)
    return task


def issue_task(number: int) -> NewTask:
    payload = {"repository": gl.GITLAB_REPO, "issue": {"number": number}}
    return NewTask.build("issue_assigned", payload)


def mr_task(number: int) -> NewTask:
    payload = {"repository": gl.GITLAB_REPO, "pull_request": {"number": number}}
    return NewTask.build("pr_review_requested", payload)


async def test_closing_mr_one_does_not_cancel_the_work_on_issue_one(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    hook = await Hook().start(memory_store)
    issue = await finish(hook, issue_task(1), None)
    review = await finish(hook, mr_task(1), None)
    closed = gl.gl_merge_request_hook(None, action="close")
    status, body = await hook.send("Merge Request Hook", closed)
    assert status == 200 and body["task_ids"] == [review.id], body
    assert (await hook.store.get(issue.id)).status is TaskStatus.QUEUED
    assert (await hook.store.get(review.id)).status is TaskStatus.CANCELLED


OPENED_MR_1 = {
    "action": "auto_approved",
    "pull_request": {"number": 1, "url": "u", "head_sha": "s"},
}


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("Pipeline Hook", gl.gl_pipeline_hook("success", iid=1, ref="tamma/1-fix")),
        ("Pipeline Hook", gl.gl_pipeline_hook("success", iid=None, ref="tamma/1-fix")),
        ("Merge Request Hook", gl.gl_merge_request_hook(None, action="approved", iid=1)),
    ],
)
async def test_the_bots_fresh_mr_gets_its_first_look_when_it_may_be_ready(
    memory_store: OpenMemoryStore, autojump_clock: Any, event: str, payload: dict[str, Any]
) -> None:
    """Issue #1's task opened !1 on branch tamma/1-fix; no task has looked at !1 yet."""
    hook = await Hook().start(memory_store)
    if event == "Merge Request Hook":
        payload["object_attributes"]["source_branch"] = "tamma/1-fix"
    await finish(hook, issue_task(1), OPENED_MR_1)
    status, body = await hook.send(event, payload, key="k")
    assert status == 202, body
    [review] = [t for t in await hook.tasks() if t.type.value == "pr_review_requested"]
    assert review.subject == f"{gl.GITLAB_REPO}#!1" and review.key == "gitlab:k:1"


async def test_an_mr_the_bot_did_not_open_is_not_looked_at(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    """Issue #1's latest task says nothing about !1: the pipeline of someone's !1 is theirs."""
    hook = await Hook().start(memory_store)
    await finish(hook, issue_task(1), {"action": "escalated_for_approval"})
    payload = gl.gl_pipeline_hook("success", iid=1, ref="feature")
    status, body = await hook.send("Pipeline Hook", payload)
    assert status == 200 and "no pull request of the bot" in body["reason"], body


async def test_a_pull_request_task_stored_under_the_old_subject_still_counts(
    memory_store: OpenMemoryStore, autojump_clock: Any, tmp_path: Path
) -> None:
    """Before merge requests had their own subject, a review task of !4 was stored as #4: a
    SQLite row written then, left monitoring, is still found when its pipeline turns green."""
    path = tmp_path / "tamma.db"
    async with SqliteStore(path, inline=True) as store:
        task, _ = await store.add(mr_task(4))
        [claimed_task] = await store.claim(1)
        await store.complete(task.id, claimed_task.lease_token or "", {"action": "monitoring"})
    with sqlite3.connect(path) as db:
        db.execute("UPDATE tasks SET subject = ? WHERE id = ?", (f"{gl.GITLAB_REPO}#4", task.id))
    db.close()
    async with SqliteStore(path, inline=True) as reopened:
        hook = Hook()
        hook.store_factory = lambda: reopened
        await hook.start(memory_store)
        payload = gl.gl_pipeline_hook("success", iid=4)
        status, body = await hook.send("Pipeline Hook", payload, key="k")
        assert status == 202, body
        tasks = await hook.tasks()
    assert [t.subject for t in tasks] == [f"{gl.GITLAB_REPO}#!4", f"{gl.GITLAB_REPO}#4"]
