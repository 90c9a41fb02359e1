"""GitLab deliveries that lead to work once a GitLab forge is configured: a successful pipeline
or an approval re-evaluates a merge request of the bot's left monitoring, and comment commands
are decided by the live access-level check instead of ``[webhooks.gitlab] command_authors``."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tamma_trio.models import NewTask
from tests import webhook_payloads as gl
from tests.test_webhooks_gitlab import Hook
from tests.web_fixtures import OpenMemoryStore


async def developers_only(repository: str, login: str) -> bool:
    return login == "dev"


async def left_monitoring(hook: Hook, number: int) -> int:
    payload = {"repository": gl.GITLAB_REPO, "pull_request": {"number": number}}
    task, _ = await hook.store.add(NewTask.build("pr_review_requested", payload))
    [claimed] = await hook.store.claim(1)
    await hook.store.complete(task.id, claimed.lease_token or "", {"action": "monitoring"})
    return task.id


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("Pipeline Hook", gl.gl_pipeline_hook("success", iid=4)),
        ("Merge Request Hook", gl.gl_merge_request_hook(None, action="approved", iid=4)),
    ],
)
async def test_green_pipeline_or_approval_re_evaluates_the_bots_mr(
    memory_store: OpenMemoryStore, autojump_clock: Any, event: str, payload: Any
) -> None:
    hook = await Hook().start(memory_store)
    first = await left_monitoring(hook, 4)
    status, body = await hook.send(event, payload, key="k")
    assert status == 202, body
    [again] = [t for t in await hook.tasks() if t.id != first]
    assert again.subject == f"{gl.GITLAB_REPO}#!4" and again.key == "gitlab:k:4"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (gl.gl_pipeline_hook("running"), "pipeline running"),
        (gl.gl_pipeline_hook("success", iid=7), "no pull request of the bot"),
    ],
)
async def test_other_pipelines_are_ignored(
    memory_store: OpenMemoryStore, autojump_clock: Any, payload: Any, reason: str
) -> None:
    hook = await Hook().start(memory_store)
    status, body = await hook.send("Pipeline Hook", payload)
    assert status == 200 and reason in body["reason"], body


@pytest.mark.parametrize(("author", "outcome"), [("dev", 202), ("guest", 200)])
async def test_a_gitlab_forge_decides_commands_live(
    memory_store: OpenMemoryStore, autojump_clock: Any, author: str, outcome: int
) -> None:
    hook = await Hook(authors=()).start(memory_store)
    deps = dataclasses.replace(hook.deps, forge_kind="gitlab", may_command=developers_only)
    from tamma_trio.web import create_app

    hook.client = create_app(deps).test_client()
    status, body = await hook.send("Note Hook", gl.gl_note_hook("/tamma start", author=author))
    assert status == outcome, body
    if outcome == 200:
        assert body["status"] == "refused" and "live check" in body["reason"]
