"""Bad input refused alike at every door: strict JSON, strict payload integers, GitHub's
repository names. Each case is a 400 naming the problem over the API, with nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tamma_trio import strict_json
from tamma_trio.errors import ValidationError
from tamma_trio.models import MAX_NUMBER, NewTask
from tamma_trio.repositories import check_github
from tamma_trio.web import create_app
from tests.web_fixtures import LOOPBACK, OpenMemoryStore, make_deps

JSON_HEADERS = {"Content-Type": "application/json"}


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"deeper": value}
    return value


def task_body(repository: str = "octo-org/hello.world", number: Any = 7, **extra: Any) -> Any:
    payload = {"repository": repository, "issue": {"number": number, "title": "t"}, **extra}
    return {"type": "issue_assigned", "payload": payload}


# --- the parser ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": "\\ud800"}', "lone surrogate (\\ud800)"),
        ('{"\\udfff": 1}', "lone surrogate (\\udfff)"),
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ('{"a": Infinity}', "Infinity is not valid JSON"),
        ('{"a": -Infinity}', "-Infinity is not valid JSON"),
        (json.dumps(nested(500)), "nested too deeply"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("{", "not valid JSON"),
    ],
)
def test_strict_json_names_what_it_refuses(text: str, problem: str) -> None:
    with pytest.raises(strict_json.JsonError, match="body") as caught:
        strict_json.loads(text)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"a": "\xff"}', "not UTF-8 (invalid byte at offset 7)"),
        (b'\xef\xbb\xbf{"a": 1}', "byte order mark"),
    ],
)
def test_strict_json_wants_plain_utf8(raw: bytes, problem: str) -> None:
    with pytest.raises(strict_json.JsonError) as caught:
        strict_json.loads(raw)
    assert problem in str(caught.value)


def test_strict_json_keeps_what_is_fine() -> None:
    text = json.dumps({"a": [1, 2.5, None, True], "é": "\U0001f600", "deep": nested(60)})
    assert strict_json.loads(text) == json.loads(text)


def test_values_built_in_python_are_checked_too() -> None:
    with pytest.raises(ValidationError, match="nested too deeply"):
        NewTask.build("issue_assigned", task_body(extra=nested(500))["payload"])
    with pytest.raises(ValidationError, match="not a JSON number"):
        NewTask.build("issue_assigned", task_body(score=float("nan"))["payload"])


# --- repository names as GitHub allows them -----------------------------------------------


@pytest.mark.parametrize(
    "name", ["o/r", "a" * 39 + "/" + "b" * 100, "octo-org/hello.world", "x/.github", "x/a_b-c.d"]
)
def test_repository_names_github_accepts(name: str) -> None:
    assert check_github(name) == name


@pytest.mark.parametrize(
    "name",
    [
        ".../...",
        "o/.",
        "o/..",
        "a" * 40 + "/r",
        "o/" + "b" * 101,
        "o" * 10_000 + "/r",
        "o_o/r",
        "o.o/r",
        "o/r/x",
        "/r",
        "o/",
        "o/r\n",
        "ö/r",
    ],
)
def test_repository_names_github_refuses(name: str) -> None:
    with pytest.raises(ValueError, match="owner/name"):
        check_github(name)


# --- over HTTP: 400 naming the problem, nothing stored ------------------------------------

SURROGATE = b'{"type": "issue_assigned", "payload": {"repository": "o/r", "issue": '
SURROGATE += b'{"number": 1, "title": "\\ud800"}}}'
DUPLICATE = b'{"type": "issue_assigned", "type": "pr_comment", "payload": {}}'

RAW_CASES = [
    ("lone surrogate", SURROGATE, "invalid_json", "lone surrogate"),
    ("duplicate key", DUPLICATE, "invalid_json", "duplicate key 'type'"),
    ("NaN", b'{"type": "issue_assigned", "priority": NaN}', "invalid_json", "NaN"),
    ("Infinity", b'{"type": "issue_assigned", "priority": Infinity}', "invalid_json", "Infinity"),
    (
        "extra field 500 deep",
        json.dumps(task_body(extra=nested(500))).encode(),
        "invalid_json",
        "nested too deeply",
    ),
]
FIELD_CASES = [
    ("number 2**63", task_body(number=2**63), "less than or equal to 2147483647"),
    ("number 2**70", task_body(number=2**70), "less than or equal to 2147483647"),
    ("number above the limit", task_body(number=MAX_NUMBER + 1), "less than or equal"),
    ("number as string", task_body(number="12"), "valid integer"),
    ("number as bool", task_body(number=True), "valid integer"),
    ("number as float", task_body(number=3.0), "valid integer"),
    ("title as number", task_body(extra={}) | {"payload": {"repository": "o/r",
                                                            "issue": {"number": 1, "title": 5}}},
     "valid string"),
    ("repository ...", task_body(repository=".../..."), "owner/name"),
    ("repository 10 KB owner", task_body(repository="o" * 10_000 + "/r"), "owner/name"),
    ("repository o/..", task_body(repository="o/.."), "owner/name"),
]  # fmt: skip


@pytest.fixture
async def api(memory_store: OpenMemoryStore, autojump_clock: Any) -> Any:
    deps, wakes = make_deps(await memory_store())
    return create_app(deps).test_client(), deps, wakes


async def _refused(api: Any, data: bytes) -> dict[str, Any]:
    client, deps, wakes = api
    response = await client.post("/api/tasks", data=data, headers=JSON_HEADERS, scope_base=LOOPBACK)
    assert response.status_code == 400
    body: dict[str, Any] = await response.get_json()
    assert await deps.store.list_tasks(limit=10) == [] and wakes.count == 0
    return body


@pytest.mark.parametrize(
    ("data", "error", "problem"), [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES]
)
async def test_bad_json_over_http_is_400(api: Any, data: bytes, error: str, problem: str) -> None:
    body = await _refused(api, data)
    assert body["error"] == error and problem in body["detail"]


@pytest.mark.parametrize(
    ("request_body", "problem"), [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES]
)
async def test_bad_payload_values_over_http_are_400(
    api: Any, request_body: Any, problem: str
) -> None:
    body = await _refused(api, json.dumps(request_body).encode())
    assert body["error"] == "invalid_field" and body["field"] == "payload"
    assert problem in body["detail"]


@pytest.mark.parametrize("field", ["priority", "max_retries"])
@pytest.mark.parametrize("value", ["2", True, 2.0])
async def test_envelope_integers_are_strict(api: Any, field: str, value: Any) -> None:
    body = await _refused(api, json.dumps({**task_body(), field: value}).encode())
    assert body["field"] == field and field in body["detail"]


async def test_the_largest_number_is_accepted(api: Any) -> None:
    client, _, _ = api
    response = await client.post(
        "/api/tasks", json=task_body(number=MAX_NUMBER), scope_base=LOOPBACK
    )
    assert response.status_code == 201
    assert (await response.get_json())["payload"]["issue"]["number"] == MAX_NUMBER
