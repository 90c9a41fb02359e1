"""The dashboard's login, CSRF-protected actions and read-only mode, over the real app."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from tamma_trio.config import ApiConfig, ServiceConfig
from tamma_trio.models import NewTask, TaskStatus
from tamma_trio.web.app import create_app
from tamma_trio.web.ui.session import COOKIE_NAME, SESSION_SECONDS, new_session
from tests.web_fixtures import LOOPBACK, OpenMemoryStore, make_deps, remote, wall_clock

TOKEN = "ui-token-for-tests-0123456789"
ISSUE = {"repository": "acme/widgets", "issue": {"number": 7, "title": "Fix"}}


async def dashboard(memory_store: OpenMemoryStore, token: str | None) -> tuple[Any, Any, Any, int]:
    store = await memory_store()
    task, _ = await store.add(NewTask.build("issue_assigned", ISSUE))
    api = ApiConfig(token=None if token is None else SecretStr(token))
    deps, wakes = make_deps(store, config=ServiceConfig(api=api))
    return create_app(deps).test_client(), store, wakes, task.id


async def log_in(client: Any, token: str = TOKEN, **form: str) -> Any:
    return await client.post("/ui/login", form={"token": token, **form}, scope_base=LOOPBACK)


async def csrf_of(client: Any, task_id: int) -> str:
    response = await client.get(f"/ui/tasks/{task_id}", scope_base=LOOPBACK)
    html: str = await response.get_data(as_text=True)
    marker = 'name="csrf" value="'
    assert marker in html, "no action form on the task page"
    return html.split(marker, 1)[1].split('"', 1)[0]


async def post(client: Any, path: str, form: dict[str, str], **headers: str) -> Any:
    return await client.post(path, form=form, headers=headers, scope_base=LOOPBACK)


# --- no token: read-only ----------------------------------------------------------------------


async def test_without_a_token_pages_are_open_and_read_only(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client, store, _, task_id = await dashboard(memory_store, None)
    page = await client.get(f"/ui/tasks/{task_id}", scope_base=LOOPBACK)
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert "read-only" in html and "/cancel" not in html
    refused = await post(client, f"/ui/tasks/{task_id}/cancel", {"csrf": "x"})
    assert refused.status_code == 403
    assert "read-only" in await refused.get_data(as_text=True)
    login = await log_in(client, "anything")
    assert login.status_code == 403 and COOKIE_NAME not in login.headers.get("Set-Cookie", "")
    assert (await store.get(task_id)).status is TaskStatus.QUEUED


# --- a token: login, session, CSRF -------------------------------------------------------------


async def test_a_token_sends_visitors_to_the_login_form(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client, _, _, task_id = await dashboard(memory_store, TOKEN)
    for path in ("/ui/", "/ui/live", "/ui/tasks?status=queued", f"/ui/tasks/{task_id}"):
        response = await client.get(path, scope_base=remote("192.0.2.7"))
        assert response.status_code == 303, path
        assert response.headers["Location"].startswith("/ui/login?next=/ui/")
    form = await client.get("/ui/login", scope_base=LOOPBACK)
    assert 'type="password" name="token"' in await form.get_data(as_text=True)


async def test_a_wrong_token_is_refused_without_a_cookie(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client, _, _, _ = await dashboard(memory_store, TOKEN)
    response = await log_in(client, "wrong-token")
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers
    assert "wrong-token" not in await response.get_data(as_text=True)
    still_out = await client.get("/ui/", scope_base=LOOPBACK)
    assert still_out.status_code == 303


async def test_login_sets_an_httponly_strict_cookie_that_is_not_the_token(
    memory_store: OpenMemoryStore,
    autojump_clock: Any,
) -> None:
    client, _, _, _ = await dashboard(memory_store, TOKEN)
    response = await log_in(client, next="/ui/tasks?status=queued")
    assert response.status_code == 303
    assert response.headers["Location"] == "/ui/tasks?status=queued"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
    assert TOKEN not in cookie
    assert (await client.get("/ui/", scope_base=LOOPBACK)).status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/api/tasks"])
async def test_login_never_redirects_off_the_dashboard(
    memory_store: OpenMemoryStore, autojump_clock: Any, target: str
) -> None:
    client, _, _, _ = await dashboard(memory_store, TOKEN)
    response = await log_in(client, next=target)
    assert response.headers["Location"] == "/ui/"


async def test_cancel_then_retry_with_a_session_and_its_csrf_token(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client, store, wakes, task_id = await dashboard(memory_store, TOKEN)
    await log_in(client)
    csrf = await csrf_of(client, task_id)
    cancelled = await post(client, f"/ui/tasks/{task_id}/cancel", {"csrf": csrf})
    assert cancelled.status_code == 303
    assert cancelled.headers["Location"] == f"/ui/tasks/{task_id}"
    assert (await store.get(task_id)).status is TaskStatus.CANCELLED
    retried = await post(client, f"/ui/tasks/{task_id}/retry", {"csrf": csrf})
    assert retried.status_code == 303 and wakes.count == 1
    assert (await store.get(task_id)).status is TaskStatus.QUEUED
    actors = [(e.kind, e.actor) for e in await store.events(task_id)]
    assert actors[-2:] == [("cancelled", "ui"), ("retried", "ui")]


async def test_an_action_that_the_task_cannot_take_is_a_409_page(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client, store, _, task_id = await dashboard(memory_store, TOKEN)
    await log_in(client)
    csrf = await csrf_of(client, task_id)
    response = await post(client, f"/ui/tasks/{task_id}/retry", {"csrf": csrf})
    assert response.status_code == 409
    assert "only a failed or cancelled task" in await response.get_data(as_text=True)
    assert (await store.get(task_id)).status is TaskStatus.QUEUED


@pytest.mark.parametrize(
    ("form", "headers", "status"),
    [
        ({}, {}, 403),  # no CSRF token
        ({"csrf": "0" * 64}, {}, 403),  # a forged one
        ("good", {"Origin": "https://evil.example"}, 403),  # right token, posted from elsewhere
        ("good", {"Origin": "null"}, 403),  # a sandboxed or file page
    ],
)
async def test_forged_actions_change_nothing(
    memory_store: OpenMemoryStore,
    autojump_clock: Any,
    form: Any,
    headers: dict[str, str],
    status: int,
) -> None:
    client, store, _, task_id = await dashboard(memory_store, TOKEN)
    await log_in(client)
    if form == "good":
        form = {"csrf": await csrf_of(client, task_id)}
    response = await post(client, f"/ui/tasks/{task_id}/cancel", form, **headers)
    assert response.status_code == status
    assert (await store.get(task_id)).status is TaskStatus.QUEUED


async def test_an_action_without_a_session_changes_nothing(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client, store, _, task_id = await dashboard(memory_store, TOKEN)
    response = await client.post(
        f"/ui/tasks/{task_id}/cancel",
        form={"csrf": "x"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        scope_base=LOOPBACK,
    )
    assert response.status_code == 401
    assert (await store.get(task_id)).status is TaskStatus.QUEUED


async def test_a_session_expires_and_dies_with_a_new_token(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client, _, _, _ = await dashboard(memory_store, TOKEN)
    old = new_session(SecretStr(TOKEN), wall_clock() - SESSION_SECONDS - 1)
    other = new_session(SecretStr("another-token-entirely"), wall_clock())
    fresh = new_session(SecretStr(TOKEN), wall_clock() - SESSION_SECONDS + 60)
    for value, status in ((fresh, 200), (old, 303), (other, 303), ("12.34", 303), ("x", 303)):
        client.cookie_jar.clear()
        client.set_cookie("localhost", COOKIE_NAME, value, path="/ui")
        response = await client.get("/ui/", scope_base=LOOPBACK)
        assert response.status_code == status, value


async def test_logout_clears_the_session(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client, _, _, task_id = await dashboard(memory_store, TOKEN)
    await log_in(client)
    csrf = await csrf_of(client, task_id)
    response = await post(client, "/ui/logout", {"csrf": csrf})
    assert response.status_code == 303
    assert f"{COOKIE_NAME}=;" in response.headers["Set-Cookie"]
    assert (await client.get("/ui/", scope_base=LOOPBACK)).status_code == 303


async def test_a_bearer_header_reads_but_cannot_post(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client, _, _, task_id = await dashboard(memory_store, TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    page = await client.get(f"/ui/tasks/{task_id}", headers=bearer, scope_base=LOOPBACK)
    assert page.status_code == 200
    assert "/cancel" not in await page.get_data(as_text=True)


async def escalated_task(store: Any, task_id: int) -> None:
    [task] = await store.claim(1)
    assert task.id == task_id
    result = {"action": "escalated_for_approval", "stage": "plan", "reasons": ["risk high"]}
    await store.complete(task.id, task.lease_token or "", result)


async def test_approve_queues_the_issue_again_with_the_plan_approved(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client, store, wakes, task_id = await dashboard(memory_store, TOKEN)
    await escalated_task(store, task_id)
    await log_in(client)
    csrf = await csrf_of(client, task_id)
    response = await post(client, f"/ui/tasks/{task_id}/approve", {"csrf": csrf})
    assert response.status_code == 303
    new_id = int(response.headers["Location"].rsplit("/", 1)[1])
    approved = await store.get(new_id)
    assert approved.payload["approval"] == {"by": "operator", "of_task": task_id}
    assert approved.status is TaskStatus.QUEUED and wakes.count == 1
    assert [(e.kind, e.actor) for e in await store.events(new_id)] == [("enqueued", "ui")]
    again = await post(client, f"/ui/tasks/{task_id}/approve", {"csrf": csrf})
    assert again.headers["Location"] == f"/ui/tasks/{new_id}"  # one approval, one task
    assert len(await store.list_tasks()) == 2


async def test_approve_refuses_a_task_not_waiting_for_approval(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client, store, _, task_id = await dashboard(memory_store, TOKEN)
    await log_in(client)
    csrf = await csrf_of(client, task_id)
    page = await (await client.get(f"/ui/tasks/{task_id}", scope_base=LOOPBACK)).get_data(
        as_text=True
    )
    assert "/approve" not in page  # the button shows only on escalated tasks
    response = await post(client, f"/ui/tasks/{task_id}/approve", {"csrf": csrf})
    assert response.status_code == 400
    assert "is not waiting for approval" in await response.get_data(as_text=True)
    forged = await post(client, f"/ui/tasks/{task_id}/approve", {"csrf": "0" * 64})
    assert forged.status_code == 403
    assert len(await store.list_tasks()) == 1
