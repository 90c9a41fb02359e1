"""The tasks API: happy paths, every rejection (status, JSON error, nothing stored), auth."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tamma_trio.config import ApiConfig, ServiceConfig
from tamma_trio.models import NewTask, Task, TaskStatus
from tamma_trio.web import WebDeps, create_app
from tests.web_fixtures import LOOPBACK, BrokenStore, OpenMemoryStore, make_deps, remote

PR_REVIEW: dict[str, Any] = {
    "type": "pr_review_requested",
    "payload": {"repository": "o/r", "pull_request": {"number": 3}},
}
ISSUE: dict[str, Any] = {
    "type": "issue_assigned",
    "priority": 2,
    "max_retries": 1,
    "key": "delivery-1",
    "payload": {"repository": "o/r", "issue": {"number": 9, "title": "Fix it"}},
}
TOKEN = "api-token-for-tests-0123"


@pytest.fixture
async def api(memory_store: OpenMemoryStore, autojump_clock: Any) -> Any:
    """(client, deps, wakes) over a MemoryStore, no token configured."""
    deps, wakes = make_deps(await memory_store())
    return create_app(deps).test_client(), deps, wakes


async def post(client: Any, path: str, body: Any = None, **kwargs: Any) -> Any:
    kwargs.setdefault("scope_base", LOOPBACK)
    if body is not None:
        kwargs["json"] = body
    return await client.post(path, **kwargs)


async def stored(deps: WebDeps) -> list[Task]:
    return await deps.store.list_tasks(limit=500)


# --- happy paths ------------------------------------------------------------------------------


async def test_add_returns_201_with_the_task_and_wakes_the_poller(api: Any) -> None:
    client, deps, wakes = api
    response = await post(client, "/api/tasks", ISSUE)
    assert response.status_code == 201
    task = await response.get_json()
    assert task["type"] == "issue_assigned" and task["status"] == "queued"
    assert task["priority"] == 2 and task["max_retries"] == 1
    assert task["payload"]["issue"]["number"] == 9
    assert "lease_token" not in task
    assert response.headers["Location"] == f"/api/tasks/{task['id']}"
    assert wakes.count == 1
    assert [t.id for t in await stored(deps)] == [task["id"]]


async def test_max_retries_defaults_to_the_service_setting(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    deps, _ = make_deps(await memory_store(), config=ServiceConfig(max_retries=5))
    response = await post(create_app(deps).test_client(), "/api/tasks", PR_REVIEW)
    assert (await response.get_json())["max_retries"] == 5


async def test_a_known_key_returns_the_existing_task_with_200(api: Any) -> None:
    client, deps, wakes = api
    first = await (await post(client, "/api/tasks", ISSUE)).get_json()
    again = await post(client, "/api/tasks", ISSUE)
    assert again.status_code == 200
    assert (await again.get_json())["id"] == first["id"]
    assert wakes.count == 1 and len(await stored(deps)) == 1


async def test_show_returns_the_task_with_its_events(api: Any) -> None:
    client, _, _ = api
    task = await (await post(client, "/api/tasks", ISSUE)).get_json()
    response = await client.get(f"/api/tasks/{task['id']}")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["id"] == task["id"] and body["status"] == "queued"
    assert body["events"] and body["events"][0]["task_id"] == task["id"]
    assert body["events"][0]["actor"] == "api"


async def test_list_filters_and_pages(api: Any) -> None:
    client, deps, _ = api
    await deps.store.add_many(
        [
            NewTask.build("issue_assigned", ISSUE["payload"] | {"issue": {"number": n}})
            for n in (1, 2, 3)
        ]
        + [NewTask.build("pr_review_requested", PR_REVIEW["payload"])]
    )
    all_tasks = await (await client.get("/api/tasks")).get_json()
    assert all_tasks["count"] == 4 and all_tasks["limit"] == 50 and all_tasks["offset"] == 0
    by_type = await client.get("/api/tasks", query_string={"type": "pr_review_requested"})
    assert [t["type"] for t in (await by_type.get_json())["tasks"]] == ["pr_review_requested"]
    page = await (await client.get("/api/tasks", query_string={"limit": 2, "offset": 1})).get_json()
    assert page["count"] == 2
    assert [t["id"] for t in page["tasks"]] == [t["id"] for t in all_tasks["tasks"][1:3]]
    none = await client.get("/api/tasks", query_string={"status": "failed"})
    assert (await none.get_json())["tasks"] == []
    newest = all_tasks["tasks"][0]["id"]
    older = await client.get("/api/tasks", query_string={"before": newest, "text": "issue"})
    assert [t["id"] for t in (await older.get_json())["tasks"]] == [
        t["id"] for t in all_tasks["tasks"][1:]
    ]
    other_repo = await client.get("/api/tasks", query_string={"repository": "o/other"})
    assert (await other_repo.get_json())["tasks"] == []


async def test_cancel_then_retry(api: Any) -> None:
    client, deps, wakes = api
    task = await (await post(client, "/api/tasks", PR_REVIEW)).get_json()
    cancelled = await post(client, f"/api/tasks/{task['id']}/cancel")
    assert cancelled.status_code == 200
    assert (await cancelled.get_json())["status"] == "cancelled"
    again = await post(client, f"/api/tasks/{task['id']}/cancel")
    assert again.status_code == 409
    assert (await again.get_json())["error"] == "conflict"
    retried = await post(client, f"/api/tasks/{task['id']}/retry", {})
    assert retried.status_code == 200
    assert (await retried.get_json())["status"] == "queued"
    assert wakes.count == 2
    queued = await post(client, f"/api/tasks/{task['id']}/retry")
    assert queued.status_code == 409
    assert (await deps.store.get(task["id"])).status is TaskStatus.QUEUED


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tasks/999"),
        ("POST", "/api/tasks/999/cancel"),
        ("POST", "/api/tasks/999/retry"),
        ("GET", "/api/tasks/99999999999999999999999"),
        ("GET", "/api/tasks/0"),
        ("GET", "/api/tasks/abc"),
        ("POST", "/api/tasks/-1/cancel"),
    ],
)
async def test_unknown_tasks_are_404(api: Any, method: str, path: str) -> None:
    client, deps, _ = api
    response = await client.open(path, method=method, scope_base=LOOPBACK)
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "not_found"
    assert await stored(deps) == []


# --- rejections of POST /api/tasks: status, error, field, nothing stored ----------------------

JSON_HEADERS = {"Content-Type": "application/json"}


def with_field(**changes: Any) -> bytes:
    body = {**PR_REVIEW, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


BAD_BODIES = [
    # (id, data, headers, status, error, field)
    ("text/plain", b"{}", {"Content-Type": "text/plain"}, 415, "unsupported_media_type", None),
    ("no content type", with_field(), {}, 415, "unsupported_media_type", None),
    ("form", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, None, None),
    ("not json", b"{type:", JSON_HEADERS, 400, "invalid_json", None),
    ("empty", b"", JSON_HEADERS, 400, "invalid_json", None),
    ("array", b"[1, 2]", JSON_HEADERS, 400, "invalid_json", None),
    ("string", b'"task"', JSON_HEADERS, 400, "invalid_json", None),
    ("NaN", b'{"type": NaN}', JSON_HEADERS, 400, "invalid_json", None),
    ("latin-1", '{"type": "é"}'.encode("latin-1"), JSON_HEADERS, 400, "invalid_json", None),
    ("unknown field", with_field(colour="red"), JSON_HEADERS, 400, "invalid_field", "colour"),
    ("no type", with_field(type=...), JSON_HEADERS, 400, "invalid_field", "type"),
    ("bad type", with_field(type="deploy"), JSON_HEADERS, 400, "invalid_field", "type"),
    ("int type", with_field(type=3), JSON_HEADERS, 400, "invalid_field", "type"),
    ("no payload", with_field(payload=...), JSON_HEADERS, 400, "invalid_field", "payload"),
    ("list payload", with_field(payload=[]), JSON_HEADERS, 400, "invalid_field", "payload"),
    (
        "bad payload",
        with_field(payload={"repository": "o/r", "pull_request": {"number": 0}}),
        JSON_HEADERS,
        400,
        "invalid_field",
        "payload",
    ),
    (
        "bad repository",
        with_field(payload={"repository": "no-owner", "pull_request": {"number": 1}}),
        JSON_HEADERS,
        400,
        "invalid_field",
        "payload",
    ),
    ("priority 7", with_field(priority=7), JSON_HEADERS, 400, "invalid_field", "priority"),
    ("priority str", with_field(priority="high"), JSON_HEADERS, 400, "invalid_field", "priority"),
    ("priority bool", with_field(priority=True), JSON_HEADERS, 400, "invalid_field", "priority"),
    ("priority float", with_field(priority=1.5), JSON_HEADERS, 400, "invalid_field", "priority"),
    ("retries 11", with_field(max_retries=11), JSON_HEADERS, 400, "invalid_field", "max_retries"),
    ("retries -1", with_field(max_retries=-1), JSON_HEADERS, 400, "invalid_field", "max_retries"),
    ("empty key", with_field(key=""), JSON_HEADERS, 400, "invalid_field", "key"),
    ("long key", with_field(key="k" * 201), JSON_HEADERS, 400, "invalid_field", "key"),
    ("int key", with_field(key=5), JSON_HEADERS, 400, "invalid_field", "key"),
    (
        "long unknown field",
        with_field(**{"x" * 5000: 1}),
        JSON_HEADERS,
        400,
        "invalid_field",
        "x" * 57 + "...",
    ),
]


@pytest.mark.parametrize(
    ("data", "headers", "status", "error", "field"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
async def test_bad_bodies_are_refused_and_nothing_is_stored(
    api: Any,
    data: bytes,
    headers: dict[str, str],
    status: int,
    error: str | None,
    field: str | None,
) -> None:
    client, deps, wakes = api
    response = await client.post("/api/tasks", data=data, headers=headers, scope_base=LOOPBACK)
    assert response.status_code == status
    body = await response.get_json()
    assert set(body) >= {"error", "detail"} and body["detail"]
    if error is not None:
        assert body["error"] == error
    assert body.get("field") == field
    assert await stored(deps) == [] and wakes.count == 0


async def test_deep_nesting_under_the_size_limit_is_a_400(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    deps, _ = make_deps(await memory_store())
    data = b"[" * 50_000 + b"]" * 50_000  # 100 kB, inside the default 1 MiB limit
    response = (
        await create_app(deps)
        .test_client()
        .post("/api/tasks", data=data, headers=JSON_HEADERS, scope_base=LOOPBACK)
    )
    assert response.status_code == 400
    assert "nested" in (await response.get_json())["detail"]
    assert await stored(deps) == []


@pytest.mark.parametrize(
    ("headers", "size"),
    [
        ({"Content-Length": "5000"}, 10),  # declared too large: refused before reading
        ({"Content-Length": "10"}, 2000),  # lies about its size: refused while reading
        ({}, 2000),  # no length at all (HTTP/2 or chunked)
    ],
)
async def test_oversized_bodies_are_413(
    memory_store: OpenMemoryStore, autojump_clock: Any, headers: dict[str, str], size: int
) -> None:
    deps, wakes = make_deps(
        await memory_store(), config=ServiceConfig(api=ApiConfig(max_body_bytes=1024))
    )
    client = create_app(deps).test_client()
    payload = {**PR_REVIEW["payload"], "padding": "x" * size}
    data = json.dumps({**PR_REVIEW, "payload": payload}).encode()
    response = await client.post(
        "/api/tasks", data=data, headers={**JSON_HEADERS, **headers}, scope_base=LOOPBACK
    )
    assert response.status_code == 413
    assert (await response.get_json())["error"] == "payload_too_large"
    assert await stored(deps) == [] and wakes.count == 0


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "٣", "9" * 5000])
async def test_a_malformed_content_length_is_400(api: Any, length: str) -> None:
    client, deps, _ = api
    response = await client.post(
        "/api/tasks",
        data=with_field(),
        headers={**JSON_HEADERS, "Content-Length": length},
        scope_base=LOOPBACK,
    )
    assert response.status_code == 400
    assert "Content-Length" in (await response.get_json())["detail"]
    assert await stored(deps) == []


async def test_cancel_with_a_non_json_body_changes_nothing(api: Any) -> None:
    client, deps, _ = api
    task = await (await post(client, "/api/tasks", PR_REVIEW)).get_json()
    response = await client.post(
        f"/api/tasks/{task['id']}/cancel",
        data=b"please",
        headers={"Content-Type": "text/plain"},
        scope_base=LOOPBACK,
    )
    assert response.status_code == 415
    assert (await deps.store.get(task["id"])).status is TaskStatus.QUEUED


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "done"}, "status"),
        ({"type": "deploy"}, "type"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "9" * 5000}, "offset"),
        ({"page": "2"}, "page"),
        ({"repository": "no-slash"}, "repository"),
        ({"repository": "../x"}, "repository"),
        ({"text": ""}, "text"),
        ({"text": "x" * 201}, "text"),
        ({"before": "0"}, "before"),
        ({"before": "soon"}, "before"),
    ],
)
async def test_bad_list_filters_are_400(api: Any, query: dict[str, str], field: str) -> None:
    client, _, _ = api
    response = await client.get("/api/tasks", query_string=query)
    assert response.status_code == 400
    body = await response.get_json()
    assert body["error"] == "invalid_field" and body["field"] == field


async def test_store_failure_is_503_not_500(autojump_clock: Any) -> None:
    deps, _ = make_deps(BrokenStore())
    client = create_app(deps).test_client()
    listing = await client.get("/api/tasks")
    added = await post(client, "/api/tasks", PR_REVIEW)
    for response in (listing, added):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert (await response.get_json())["error"] == "store_unavailable"


# --- auth ---------------------------------------------------------------------------------


@pytest.fixture
async def guarded(memory_store: OpenMemoryStore, autojump_clock: Any) -> Any:
    """(client, deps, wakes) with [service.api] token set."""
    config = ServiceConfig(api=ApiConfig(token=TOKEN))
    deps, wakes = make_deps(await memory_store(), config=config)
    return create_app(deps).test_client(), deps, wakes


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer é"],
)
async def test_a_missing_or_wrong_token_is_401(guarded: Any, authorization: str | None) -> None:
    client, deps, wakes = guarded
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await post(client, "/api/tasks", PR_REVIEW, headers=headers)
    assert response.status_code == 401
    assert (await response.get_json())["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in (await response.get_data(as_text=True))
    assert await stored(deps) == [] and wakes.count == 0


async def test_the_right_token_is_accepted_from_any_address(guarded: Any) -> None:
    client, deps, _ = guarded
    headers = {"Authorization": f"bearer {TOKEN}"}
    response = await post(
        client, "/api/tasks", PR_REVIEW, headers=headers, scope_base=remote("203.0.113.7")
    )
    assert response.status_code == 201
    assert len(await stored(deps)) == 1


async def test_cancel_and_retry_need_the_token_too(guarded: Any) -> None:
    client, deps, _ = guarded
    task, _ = await deps.store.add(NewTask.build("pr_review_requested", PR_REVIEW["payload"]))
    for action in ("cancel", "retry"):
        response = await post(client, f"/api/tasks/{task.id}/{action}")
        assert response.status_code == 401
    assert (await deps.store.get(task.id)).status is TaskStatus.QUEUED


async def test_reads_need_the_token_too(guarded: Any) -> None:
    client, deps, _ = guarded
    task, _ = await deps.store.add(NewTask.build("pr_review_requested", PR_REVIEW["payload"]))
    for path in ("/api/tasks", f"/api/tasks/{task.id}"):
        refused = await client.get(path, scope_base=remote("127.0.0.1"))
        assert refused.status_code == 401
        body = await refused.get_data(as_text=True)
        assert "pull_request" not in body and "events" not in body
        allowed = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1"])
async def test_without_a_token_loopback_clients_may_add(api: Any, address: str) -> None:
    client, _, _ = api
    response = await post(client, "/api/tasks", PR_REVIEW, scope_base=remote(address))
    assert response.status_code == 201


@pytest.mark.parametrize(
    "address", ["10.0.0.5", "203.0.113.7", "::ffff:10.0.0.1", "fe80::1", None, "unix"]
)
async def test_without_a_token_remote_clients_are_refused(api: Any, address: str | None) -> None:
    client, deps, wakes = api
    response = await post(client, "/api/tasks", PR_REVIEW, scope_base=remote(address))
    assert response.status_code == 403
    body = await response.get_json()
    assert body["error"] == "forbidden" and "loopback" in body["detail"]
    assert await stored(deps) == [] and wakes.count == 0


async def test_log_line_of_an_added_task_carries_its_id(api: Any, caplog: Any) -> None:
    client, _, _ = api
    with caplog.at_level("INFO", logger="tamma_trio.web.api"):
        task = await (await post(client, "/api/tasks", PR_REVIEW)).get_json()
    (record,) = [r for r in caplog.records if r.name == "tamma_trio.web.api"]
    assert record.task_id == task["id"] and record.task_type == "pr_review_requested"


# --- batches ----------------------------------------------------------------------------------


def batch(count: int, first: int = 1) -> dict[str, Any]:
    return {
        "tasks": [
            {"type": "issue_assigned", "payload": {"repository": "o/r", "issue": {"number": n}}}
            for n in range(first, first + count)
        ]
    }


async def test_a_batch_is_stored_in_order_and_wakes_the_poller_once(api: Any) -> None:
    client, deps, wakes = api
    response = await post(client, "/api/tasks/batch", batch(3))
    assert response.status_code == 201
    body = await response.get_json()
    assert body["created"] == 3
    assert [t["payload"]["issue"]["number"] for t in body["tasks"]] == [1, 2, 3]
    assert wakes.count == 1
    assert sorted(t.id for t in await stored(deps)) == [t["id"] for t in body["tasks"]]


async def test_a_batch_of_known_keys_adds_nothing_and_answers_200(api: Any) -> None:
    client, deps, wakes = api
    first = await (await post(client, "/api/tasks/batch", {"tasks": [ISSUE]})).get_json()
    again = await post(client, "/api/tasks/batch", {"tasks": [ISSUE]})
    assert again.status_code == 200
    body = await again.get_json()
    assert body["created"] == 0 and body["tasks"][0]["id"] == first["tasks"][0]["id"]
    assert wakes.count == 1 and len(await stored(deps)) == 1


@pytest.mark.parametrize(
    ("body", "field", "detail"),
    [
        ({"tasks": []}, "tasks", "tasks must be a list of 1 to 500 task objects"),
        ({"tasks": {"type": "x"}}, "tasks", "tasks must be a list"),
        ({"tasks": batch(501)["tasks"]}, "tasks", "tasks must be a list of 1 to 500"),
        ({"tasks": [*batch(1)["tasks"], 7]}, "tasks[1]", "tasks[1] must be a JSON object"),
        (
            {"tasks": [*batch(1)["tasks"], {"type": "issue_assigned", "payload": {}}]},
            "tasks[1].payload",
            "tasks[1]: invalid payload for issue_assigned: repository: Field required",
        ),
        ({"tasks": batch(1)["tasks"], "extra": 1}, "extra", "unknown field 'extra'"),
    ],
)
async def test_a_bad_batch_is_refused_whole_and_stores_nothing(
    api: Any, body: dict[str, Any], field: str, detail: str
) -> None:
    client, deps, wakes = api
    response = await post(client, "/api/tasks/batch", body)
    assert response.status_code == 400
    error = await response.get_json()
    assert error["field"] == field and error["detail"].startswith(detail)
    assert await stored(deps) == [] and wakes.count == 0


async def test_a_batch_from_a_remote_client_needs_the_token(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    deps, _ = make_deps(await memory_store(), config=ServiceConfig(api=ApiConfig(token=TOKEN)))
    client = create_app(deps).test_client()
    refused = await post(client, "/api/tasks/batch", batch(2), scope_base=remote("203.0.113.7"))
    assert refused.status_code == 401
    allowed = await post(
        client,
        "/api/tasks/batch",
        batch(2),
        scope_base=remote("203.0.113.7"),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert allowed.status_code == 201
    assert len(await stored(deps)) == 2
