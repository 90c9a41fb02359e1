"""The dashboard's pages, rendered against a store with a task in every status.

Checks the HTML itself: hostile titles, comments and errors come out as text, every page
carries the Content-Security-Policy, and each page shows what it is for.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tamma_trio.delivery import DeliveryOutcome, DeliveryRecord
from tamma_trio.models import NewTask, Task
from tamma_trio.store.memory import MemoryStore
from tamma_trio.web.app import create_app
from tests.web_fixtures import LOOPBACK, BrokenStore, OpenMemoryStore, make_deps

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
HOSTILE = (SCRIPT, IMG)


def issue(number: int, title: str = "Fix the widget", repository: str = "acme/widgets") -> NewTask:
    payload = {"repository": repository, "issue": {"number": number, "title": title}}
    return NewTask.build("issue_assigned", payload)


async def claimed(store: MemoryStore, new: NewTask) -> Task:
    await store.add(new)
    [task] = await store.claim(1)
    assert task.lease_token is not None
    return task


async def seeded_store(memory_store: OpenMemoryStore) -> tuple[MemoryStore, dict[str, int]]:
    """One task in each status; titles, comments and errors are hostile text."""
    store = await memory_store()
    ids: dict[str, int] = {}
    running = await claimed(store, issue(1, SCRIPT))
    await store.record_event(running.id, "step", {"step": "implement_code", "attempt": 1})
    ids["in_progress"] = running.id

    done = await claimed(store, issue(2, IMG))
    await store.save_progress(
        done.id,
        done.lease_token or "",
        {
            "select_issue": {"url": "javascript:alert(3)"},
            "create_pull_request": {"url": "https://forge.example/acme/widgets/pull/9"},
        },
    )
    await store.record_event(done.id, "step", {"step": "generate_plan", "attempt": 1})
    verdict = {
        "stage": "plan",
        "approved": False,
        "reasons": [f"blocked file {SCRIPT}"],
        "checks": [{"rule": "blocked_files", "passed": False, "detail": IMG}],
    }
    await store.record_event(done.id, "approval", verdict)
    result = {"action": "escalated_for_approval", "stage": "plan", "reasons": [IMG]}
    await store.complete(done.id, done.lease_token or "", result)
    ids["completed"] = done.id

    failing = await claimed(store, issue(3))
    await store.fail(failing.id, failing.lease_token or "", f"agent crashed: {SCRIPT}")
    ids["failed"] = failing.id

    comment = {
        "repository": "acme/widgets",
        "issue": {"number": 4},
        "comment": {"body": IMG, "author": "mallory"},
    }
    cancelled, _ = await store.add(NewTask.build("issue_comment", comment))
    await store.cancel(cancelled.id)
    ids["cancelled"] = cancelled.id
    queued, _ = await store.add(issue(5, "queued one", repository="other/repo"))
    ids["queued"] = queued.id
    return store, ids


@pytest.fixture
async def ui(memory_store: OpenMemoryStore, autojump_clock: Any) -> tuple[Any, dict[str, int]]:
    store, ids = await seeded_store(memory_store)
    deps, _ = make_deps(store)
    return create_app(deps).test_client(), ids


async def get(client: Any, path: str, **kwargs: Any) -> tuple[int, str, Any]:
    response = await client.get(path, scope_base=LOOPBACK, **kwargs)
    return response.status_code, await response.get_data(as_text=True), response.headers


def assert_inert(html: str) -> None:
    """No hostile value survives as markup; each appears only escaped."""
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "onerror=alert" not in html or "&lt;img src=x onerror=alert" in html
    assert "javascript:" not in html


async def test_every_page_renders_escaped_with_a_strict_policy(ui: Any) -> None:
    client, ids = ui
    paths = ["/ui/", "/ui/live", "/ui/tasks", "/ui/login"]
    paths += [f"/ui/tasks/{task_id}" for task_id in ids.values()]
    for path in paths:
        status, html, headers = await get(client, path)
        assert status == 200, path
        assert_inert(html)
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"  # Chromium's forms keep their Origin
        assert headers["Content-Type"].startswith("text/html")
        assert not re.search(r"<script>[^<]", html), f"inline script on {path}"
        assert not re.search(r"https?://(?!forge\.example)", html), f"outside asset on {path}"


async def test_the_overview_shows_queue_running_step_failures_and_escalations(ui: Any) -> None:
    client, ids = ui
    _, html, _ = await get(client, "/ui/")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    running_row = re.search(rf'<tr data-task="{ids["in_progress"]}">(.*?)</tr>', html, re.S)
    assert running_row is not None
    assert '<td class="step">implement_code</td>' in running_row.group(1)
    assert "agent crashed: &lt;script&gt;" in html  # the failure and its reason
    assert f"/ui/tasks/{ids['completed']}" in html  # waiting for approval
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html  # its reason, escaped
    for status in ("queued", "in_progress", "completed", "failed", "cancelled"):
        card = re.search(rf'card-{status}" href="[^"]*">\s*<span class="count">(\d+)', html)
        assert card is not None and card.group(1) == "1", status
    assert html.count('class="bar-slot"') == 12 + 24
    priorities = re.findall(r'class="priority priority-(\w+)">\w+ <strong>(\d+)', html)
    assert priorities == [("critical", "0"), ("high", "0"), ("normal", "1"), ("low", "0")]
    assert "1 completed, 1 failed" in html  # the last hour's chart counts both endings


async def test_the_task_page_shows_timeline_approval_links_and_trail(ui: Any) -> None:
    client, ids = ui
    _, html, _ = await get(client, f"/ui/tasks/{ids['completed']}")
    assert '<rect class="gantt-bar outcome-done"' in html
    assert "<td>generate_plan</td>" in html
    assert "needs a human" in html and "blocked file &lt;script&gt;" in html
    assert 'href="https://forge.example/acme/widgets/pull/9"' in html
    assert "javascript" not in html  # the issue address was not http(s): no link
    assert "escalated_for_approval" in html and "approval" in html
    _, running, _ = await get(client, f"/ui/tasks/{ids['in_progress']}")
    assert '<rect class="gantt-bar outcome-running"' in running


async def test_the_tasks_page_filters_and_pages(ui: Any) -> None:
    client, ids = ui

    async def listed(query: dict[str, str]) -> list[int]:
        status, html, _ = await get(client, "/ui/tasks", query_string=query)
        assert status == 200
        return [int(n) for n in re.findall(r'<a href="/ui/tasks/(\d+)">', html)]

    assert await listed({}) == sorted(ids.values(), reverse=True)
    assert await listed({"status": "failed"}) == [ids["failed"]]
    assert await listed({"repository": "other/repo"}) == [ids["queued"]]
    assert await listed({"text": "crashed"}) == [ids["failed"]]
    assert await listed({"type": "issue_comment", "status": ""}) == [ids["cancelled"]]
    assert await listed({"before": str(ids["failed"])}) == [ids["completed"], ids["in_progress"]]


async def test_the_tasks_page_links_to_older_pages_keeping_the_filters(
    memory_store: OpenMemoryStore,
    autojump_clock: Any,
) -> None:
    store = await memory_store()
    await store.add_many([issue(n) for n in range(1, 61)])
    client = create_app(make_deps(store)[0]).test_client()
    _, html, _ = await get(client, "/ui/tasks", query_string={"repository": "acme/widgets"})
    older = re.search(r'<a href="([^"]+)" rel="next">', html)
    assert older is not None
    assert older.group(1) == "/ui/tasks?repository=acme/widgets&amp;before=11"
    _, rest, _ = await get(client, "/ui/tasks?repository=acme/widgets&before=11")
    assert len(re.findall(r'<a href="/ui/tasks/\d+">', rest)) == 10
    assert 'rel="next"' not in rest and ">Newest</a>" in rest


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"status": "done"}, "status must be one of"),
        ({"repository": "<script>"}, "must be owner/name"),
        ({"before": "-3"}, "before must be an integer"),
        ({"text": "x" * 201}, "text must be 1 to 200"),
        ({"sort": "id"}, "unknown query parameter"),
    ],
)
async def test_bad_filters_are_a_400_page(ui: Any, query: dict[str, str], reason: str) -> None:
    client, _ = ui
    status, html, _ = await get(client, "/ui/tasks", query_string=query)
    assert status == 400
    assert reason in html
    assert_inert(html)


async def test_unknown_task_and_store_failure_are_pages_not_500(
    memory_store: OpenMemoryStore, autojump_clock: Any
) -> None:
    client = create_app(make_deps(await memory_store())[0]).test_client()
    status, html, _ = await get(client, "/ui/tasks/99")
    assert status == 404 and "99" in html
    broken = create_app(make_deps(BrokenStore())[0]).test_client()
    status, html, headers = await get(broken, "/ui/")
    assert status == 503 and "did not answer" in html
    assert "database is locked" not in html  # the store's own words stay in the log
    assert "Content-Security-Policy" in headers


async def test_static_files_are_the_packaged_ones_only(ui: Any) -> None:
    client, _ = ui
    status, body, headers = await get(client, "/ui/static/ui.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert "fetch(" in body
    for name in ("nope.js", "..%2Fapp.py", "__init__.py"):
        status, _, _ = await get(client, f"/ui/static/{name}")
        assert status == 404, name


async def test_the_deliveries_page_shows_each_outcome_escaped_and_pages(
    memory_store: OpenMemoryStore,
    autojump_clock: Any,
) -> None:
    store = await memory_store()
    queued = DeliveryRecord(
        forge="github",
        delivery_id="d-1",
        event="issues",
        action="assigned",
        repository="acme/widgets",
        sender="alice",
        outcome=DeliveryOutcome.QUEUED,
    )
    await store.add_delivery(queued, [issue(1)])
    refused = queued.model_copy(
        update={
            "delivery_id": "d-2",
            "sender": IMG,
            "outcome": DeliveryOutcome.REFUSED,
            "reason": f"start refused: {SCRIPT} may not command the bot",
        }
    )
    await store.add_delivery(refused, [])
    for n in range(3, 53):
        ping = queued.model_copy(
            update={"delivery_id": f"d-{n}", "outcome": DeliveryOutcome.IGNORED, "reason": "ping"}
        )
        await store.add_delivery(ping, [])
    client = create_app(make_deps(store)[0]).test_client()

    status, html, _ = await get(client, "/ui/deliveries")
    assert status == 200
    assert_inert(html)
    assert html.count('<tr class="outcome-') == 50 and 'rel="next"' in html
    status, older, _ = await get(client, "/ui/deliveries?offset=50")
    assert_inert(older)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; may not command the bot" in older
    assert '<span class="delivery delivery-refused">refused</span>' in older
    assert '<a href="/ui/tasks/1">#1</a>' in older  # the task the first delivery queued
    bad, _, _ = await get(client, "/ui/deliveries?offset=-1")
    assert bad == 400
