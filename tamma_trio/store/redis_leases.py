"""Reclaiming expired leases on Redis: find them, then requeue each with a fenced script.

The scan reads the ``leases`` index and each task's lease fields; what to do with a task (requeue
or quarantine, and the event saying so) is decided here by lifecycle.py, like on every store.
The reclaim script then checks that the very lease seen here is still the task's and still
expired: a lease renewed meanwhile, or reclaimed first by another daemon, is left alone.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import redis

from tamma_trio.store import lifecycle
from tamma_trio.store import redis_codec as codec

_FIELDS = ("lease_owner", "lease_token", "lease_expires", "interruptions")


class ExpiredLease(NamedTuple):
    task_id: int
    owner: str | None
    token: str
    expires: float
    interruptions: int


def expired_leases(client: redis.Redis, base: str, now: float) -> list[ExpiredLease]:
    """The leases expired at ``now`` (blocking: run in a worker thread)."""
    ids = cast(list[str], client.zrangebyscore(f"{base}leases", "-inf", codec.seconds(now)))
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hmget(f"{base}task:{task_id}", *_FIELDS)
    found = []
    for task_id, (owner, token, expires, interruptions) in zip(ids, pipe.execute(), strict=True):
        if token is not None and expires is not None:
            found.append(
                ExpiredLease(int(task_id), owner, token, float(expires), int(interruptions))
            )
    return found


def reclaim_arguments(lease: ExpiredLease, now: float, quarantine_after: int) -> list[object]:
    """The reclaim script's arguments after the prefix (see redis_scripts.RECLAIM)."""
    count = lease.interruptions + 1
    spec = lifecycle.lease_expired_outcome(lease.owner, lease.expires, count, quarantine_after)
    outcome = spec.status.value if spec.status is not None else ""
    return [
        lease.task_id,
        lease.token,
        codec.seconds(now),
        codec.spec_json(spec),
        outcome,
        count,
        lifecycle.lease_quarantine_error(count),
    ]
