"""`tamma-trio aws init` and the start-up check: the queues and tables, with the right settings.

``ensure`` creates what is missing and corrects queue settings that drifted, idempotently, and
says what it did; ``verify`` changes nothing and lists every problem, so `config check` and
`serve` refuse a missing or mis-set queue with one clear message. Both are plain blocking
functions: the CLI calls them directly, the store in a worker thread.
"""

from __future__ import annotations

import json
from typing import Any

from tamma_trio.store.aws.client import AwsClients, as_store_error, checked, error_code
from tamma_trio.store.aws.names import (
    INDEX_BY_DUE,
    INDEX_BY_STATUS,
    INDEX_BY_SUBJECT,
    INDEX_BY_TYPE,
    INDEX_UNSENT,
    MAX_RECEIVES,
    RETENTION_SECONDS,
    AwsNames,
    visibility_seconds,
)

FIX = "run `tamma-trio aws init` to create or correct it"


def _index(name: str, hash_key: str, range_key: str, projection: dict[str, Any]) -> dict[str, Any]:
    keys = [
        {"AttributeName": hash_key, "KeyType": "HASH"},
        {"AttributeName": range_key, "KeyType": "RANGE"},
    ]
    return {"IndexName": name, "KeySchema": keys, "Projection": projection}


_WITH_DOC = {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["doc"]}
_KEYS_ONLY = {"ProjectionType": "KEYS_ONLY"}

TASK_INDEXES = (
    _index(INDEX_BY_STATUS, "status", "id", _WITH_DOC),
    _index(INDEX_BY_TYPE, "task_type", "id", _WITH_DOC),
    _index(INDEX_BY_DUE, "status", "due_at", _KEYS_ONLY),
    _index(INDEX_BY_SUBJECT, "subject", "id", _WITH_DOC),
    _index(INDEX_UNSENT, "unsent", "unsent_at", _KEYS_ONLY),
)
_TASK_ATTRIBUTES = (
    ("id", "N"),
    ("status", "S"),
    ("task_type", "S"),
    ("subject", "S"),
    ("due_at", "N"),
    ("unsent", "S"),
    ("unsent_at", "N"),
)


def _table_specs(names: AwsNames) -> dict[str, dict[str, Any]]:
    tasks = {
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": kind} for name, kind in _TASK_ATTRIBUTES
        ],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": list(TASK_INDEXES),
    }
    keys = {
        "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
    }
    return {names.tasks_table: tasks, names.keys_table: keys}


def queue_settings(dead_letter_arn: str, lease_seconds: float) -> dict[str, str]:
    """The attributes every priority queue must have."""
    redrive = {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVES}
    return {
        "VisibilityTimeout": str(visibility_seconds(lease_seconds)),
        "MessageRetentionPeriod": str(RETENTION_SECONDS),
        "RedrivePolicy": json.dumps(redrive),
    }


# --- aws init ---------------------------------------------------------------------------------


def ensure(clients: AwsClients, names: AwsNames, lease_seconds: float) -> list[str]:
    """Create or correct every queue and table; one line per resource says what happened."""
    lines: list[str] = []
    retention = {"MessageRetentionPeriod": str(RETENTION_SECONDS)}
    dlq_url = _ensure_queue(clients, names.dead_letter_queue, retention, lines)
    dlq_arn = _queue_arn(clients, dlq_url)
    for name in names.queues.values():
        _ensure_queue(clients, name, queue_settings(dlq_arn, lease_seconds), lines)
    for table, spec in _table_specs(names).items():
        lines.append(_ensure_table(clients, table, spec))
    return lines


def _ensure_queue(clients: AwsClients, name: str, wanted: dict[str, str], lines: list[str]) -> str:
    url = _queue_url(clients, name)
    if url is None:
        created = checked(
            f"creating queue {name}",
            lambda: clients.sqs.create_queue(QueueName=name, Attributes=wanted),
        )
        lines.append(f"created queue {name}")
        return str(created["QueueUrl"])
    drift = _drift(_queue_attributes(clients, url), wanted)
    if drift:
        fixed = {key: wanted[key] for key in drift}
        checked(
            f"updating queue {name}",
            lambda: clients.sqs.set_queue_attributes(QueueUrl=url, Attributes=fixed),
        )
        lines.append(f"updated queue {name}: {', '.join(sorted(drift))}")
    else:
        lines.append(f"queue {name} already set up")
    return url


def _ensure_table(clients: AwsClients, table: str, spec: dict[str, Any]) -> str:
    if _describe_table(clients, table) is not None:
        problems = _table_problems(clients, table, spec)
        return f"table {table} already set up" if not problems else "; ".join(problems)
    checked(
        f"creating table {table}",
        lambda: clients.dynamodb.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST", **spec
        ),
    )
    waiter = clients.dynamodb.get_waiter("table_exists")
    checked(f"waiting for table {table}", lambda: waiter.wait(TableName=table))
    return f"created table {table}"


# --- the start-up check -----------------------------------------------------------------------


def verify(clients: AwsClients, names: AwsNames, lease_seconds: float) -> list[str]:
    """Every problem with the queues and tables; an empty list means ready to serve."""
    dlq_url = _queue_url(clients, names.dead_letter_queue)
    if dlq_url is None:
        return [f"dead-letter queue {names.dead_letter_queue} does not exist: {FIX}"]
    wanted = queue_settings(_queue_arn(clients, dlq_url), lease_seconds)
    problems = []
    for name in names.queues.values():
        url = _queue_url(clients, name)
        if url is None:
            problems.append(f"queue {name} does not exist: {FIX}")
            continue
        actual = _queue_attributes(clients, url)
        for key in sorted(_drift(actual, wanted)):
            shown = actual.get(key, "unset")
            problems.append(f"queue {name} has {key} {shown}, expected {wanted[key]}: {FIX}")
    for table, spec in _table_specs(names).items():
        problems.extend(_table_problems(clients, table, spec))
    return problems


def _table_problems(clients: AwsClients, table: str, spec: dict[str, Any]) -> list[str]:
    described = _describe_table(clients, table)
    if described is None:
        return [f"table {table} does not exist: {FIX}"]
    have = {index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])}
    wanted = [index["IndexName"] for index in spec.get("GlobalSecondaryIndexes", [])]
    missing = [name for name in wanted if name not in have]
    if missing:
        return [f"table {table} lacks the indexes {', '.join(missing)}: recreate it with aws init"]
    return []


# --- small reads -------------------------------------------------------------------------------


def _queue_url(clients: AwsClients, name: str) -> str | None:
    try:
        return str(clients.sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except Exception as exc:  # botocore builds the error classes at run time
        if "NonExistentQueue" in error_code(exc):
            return None
        raise as_store_error(f"looking up queue {name}", exc) from None


def _queue_attributes(clients: AwsClients, url: str) -> dict[str, str]:
    answer = checked(
        "reading queue attributes",
        lambda: clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
    )
    return dict(answer.get("Attributes", {}))


def _queue_arn(clients: AwsClients, url: str) -> str:
    return _queue_attributes(clients, url)["QueueArn"]


def _describe_table(clients: AwsClients, table: str) -> dict[str, Any] | None:
    try:
        return dict(clients.dynamodb.describe_table(TableName=table)["Table"])
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise as_store_error(f"describing table {table}", exc) from None


def _drift(actual: dict[str, str], wanted: dict[str, str]) -> set[str]:
    """Keys whose value differs; the redrive policy is compared as JSON, not as text."""
    drift = set()
    for key, value in wanted.items():
        have = actual.get(key)
        if key == "RedrivePolicy" and have is not None:
            if _redrive(have) != _redrive(value):
                drift.add(key)
        elif have != value:
            drift.add(key)
    return drift


def _redrive(text: str) -> tuple[str, int]:
    policy = json.loads(text)
    return str(policy.get("deadLetterTargetArn")), int(policy.get("maxReceiveCount", 0))
