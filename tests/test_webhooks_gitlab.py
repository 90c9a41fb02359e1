"""POST /webhooks/gitlab: the token, the three hooks, who may command, dedupe on
Idempotency-Key (else X-Gitlab-Event-UUID), and 2xx for everything authenticated but unwanted."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from tamma_trio.config import GitlabWebhookConfig, ServiceConfig, WebhooksConfig
from tamma_trio.models import TaskType
from tamma_trio.store.base import TaskStore
from tamma_trio.web import create_app
from tests import webhook_payloads as gl
from tests.web_fixtures import OpenMemoryStore, make_deps

PATH = "/webhooks/gitlab"


async def everyone(repository: str, login: str) -> bool:
    return True


class Hook:
    def __init__(self, tokens: tuple[str, ...] = (gl.TOKEN,), authors: tuple[str, ...] = ("root",)):
        self.tokens, self.authors = tokens, authors
        # An open store to use instead of a MemoryStore; the test closes it.
        self.store_factory: Callable[[], TaskStore] | None = None

    async def start(self, memory_store: OpenMemoryStore) -> Hook:
        store = await memory_store() if self.store_factory is None else self.store_factory()
        deps, self.wakes = make_deps(store, config=ServiceConfig(bot_name=gl.BOT))
        section = {"tokens": self.tokens, "command_authors": self.authors}
        hooks = WebhooksConfig(gitlab=GitlabWebhookConfig.model_validate(section))
        self.deps = dataclasses.replace(
            deps, webhooks=hooks, served=frozenset({gl.GITLAB_REPO}), may_command=everyone
        )
        self.store = self.deps.store
        self.client = create_app(self.deps).test_client()
        return self

    async def send(self, event: str, payload: Any, **headers: Any) -> tuple[int, dict[str, Any]]:
        body = payload if isinstance(payload, bytes) else gl.encode(payload)
        response = await self.client.post(
            PATH, data=body, headers=gl.gitlab_headers(event, **headers)
        )
        return response.status_code, await response.get_json()

    async def tasks(self) -> list[Any]:
        return await self.store.list_tasks(limit=100)


@pytest.fixture
async def hook(memory_store: OpenMemoryStore, autojump_clock: Any) -> Hook:
    return await Hook().start(memory_store)


@pytest.mark.parametrize("token", [None, "", "wrong-token", gl.TOKEN + " "])
async def test_a_missing_or_wrong_token_is_401(hook: Hook, token: str | None) -> None:
    status, body = await hook.send(
        "Issue Hook", gl.gl_issue_hook(assignees=([], ["tamma"])), token=token
    )
    assert status == 401 and body["error"] == "unauthorized"
    assert await hook.tasks() == [] and await hook.store.list_deliveries() == []


async def test_without_tokens_every_delivery_is_refused(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    bare = await Hook(tokens=()).start(memory_store)
    status, _ = await bare.send("Issue Hook", gl.gl_issue_hook(assignees=([], ["tamma"])))
    assert status == 401 and await bare.tasks() == []


@pytest.mark.parametrize(
    ("event", "payload", "task_type", "number"),
    [
        (
            "Issue Hook",
            gl.gl_issue_hook(assignees=(["root"], ["root", "tamma"])),
            TaskType.ISSUE_ASSIGNED,
            23,
        ),
        (
            "Issue Hook",
            gl.gl_issue_hook(labels=(["bug"], ["bug", "tamma"])),
            TaskType.ISSUE_ASSIGNED,
            23,
        ),
        ("Note Hook", gl.gl_note_hook("/tamma start"), TaskType.ISSUE_COMMENT, 23),
        ("Note Hook", gl.gl_note_hook("lgtm", on="MergeRequest", iid=1), TaskType.PR_COMMENT, 1),
        (
            "Merge Request Hook",
            gl.gl_merge_request_hook(([], ["tamma"])),
            TaskType.PR_REVIEW_REQUESTED,
            1,
        ),
    ],
)
async def test_hooks_that_become_tasks(
    hook: Hook, event: str, payload: Any, task_type: TaskType, number: int
) -> None:
    status, body = await hook.send(event, payload, key="idem-1")
    assert status == 202, body
    [task] = await hook.tasks()
    pull = task_type in (TaskType.PR_COMMENT, TaskType.PR_REVIEW_REQUESTED)
    subject = f"{gl.GITLAB_REPO}#{'!' if pull else ''}{number}"
    assert task.type is task_type and task.subject == subject
    assert task.key == "gitlab:idem-1" and hook.wakes.count == 1


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        (
            "Issue Hook",
            gl.gl_issue_hook(assignees=(["tamma"], ["tamma", "root"])),
            "does not concern",
        ),
        ("Issue Hook", gl.gl_issue_hook(labels=(["tamma"], ["tamma", "bug"])), "does not concern"),
        (
            "Issue Hook",
            gl.gl_issue_hook(assignees=([], ["tamma"]), sender="tamma"),
            "sent by the bot",
        ),
        ("Note Hook", gl.gl_note_hook("nice work"), "no command"),
        ("Note Hook", gl.gl_note_hook("/tamma start", on="Snippet"), "carries no command"),
        ("Merge Request Hook", gl.gl_merge_request_hook(None), "does not concern"),
        ("Pipeline Hook", gl.gl_pipeline_hook("failed"), "pipeline failed"),
        ("Job Hook", {"object_kind": "build"}, "not one the bot handles"),
    ],
)
async def test_unwanted_hooks_still_get_2xx(
    hook: Hook, event: str, payload: Any, reason: str
) -> None:
    status, body = await hook.send(event, payload)
    assert status == 200 and reason in body["reason"], body
    assert await hook.tasks() == []


@pytest.mark.parametrize(("authors", "author"), [(("root",), "mallory"), ((), "root")])
async def test_commands_count_only_from_command_authors(
    memory_store: OpenMemoryStore, autojump_clock: Any, authors: tuple[str, ...], author: str
) -> None:
    strict = await Hook(authors=authors).start(memory_store)
    status, body = await strict.send("Note Hook", gl.gl_note_hook("/tamma start", author=author))
    assert status == 200 and body["status"] == "refused"
    assert f"{author} is not on [webhooks.gitlab] command_authors" in body["reason"]
    assert await strict.tasks() == []


async def test_idempotency_key_dedupes_retries(hook: Hook) -> None:
    payload = gl.gl_issue_hook(assignees=([], ["tamma"]))
    first = await hook.send("Issue Hook", payload, key="k-1")
    again = await hook.send("Issue Hook", payload, key="k-1")
    assert (first[0], again[0]) == (202, 200) and again[1]["task_id"] == first[1]["task_id"]
    assert len(await hook.tasks()) == 1


async def test_without_idempotency_key_the_event_uuid_dedupes(hook: Hook) -> None:
    payload = gl.gl_issue_hook(assignees=([], ["tamma"]))
    await hook.send("Issue Hook", payload, key=None, uuid="ev-1")
    status, body = await hook.send("Issue Hook", payload, key=None, uuid="ev-1")
    assert status == 200 and body["status"] == "duplicate"
    [delivery] = await hook.store.list_deliveries()
    assert delivery.delivery_id == "ev-1" and delivery.forge == "gitlab"


@pytest.mark.parametrize(
    ("payload", "status", "error"),
    [
        (b"{nope", 400, "invalid_json"),
        (b"null", 400, "invalid_json"),
        (gl.encode({"object_kind": "issue", "user": {"username": "root"}}), 400, "invalid_payload"),
    ],
)
async def test_malformed_authenticated_bodies_are_400(
    hook: Hook, payload: bytes, status: int, error: str
) -> None:
    code, body = await hook.send("Issue Hook", payload)
    assert code == status and body["error"] == error
    assert await hook.tasks() == [] and await hook.store.list_deliveries() == []
