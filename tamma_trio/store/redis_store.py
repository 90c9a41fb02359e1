"""The Redis TaskStore: one queue shared by several daemons on several hosts.

Every step that changes more than one key is one Lua script (redis_scripts.py), loaded once and
loaded again when the server answers NOSCRIPT (after a restart or SCRIPT FLUSH); script calls
that overlap in time share one pipeline (redis_batch.py). Calls run in worker threads on a
connection pool (redis_server.py).

Other daemons are alive while this one runs, so the single-host rules do not hold here: there
is no one-daemon lock, and a task of another boot is not an orphan. ``single_daemon`` is False;
only an expired lease (``reclaim_expired``) frees a task a daemon stopped renewing.

Durability is the server's: ``open`` reads appendonly/appendfsync and logs what they promise,
and with ``require_aof`` refuses a server without AOF.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar, cast

import redis
from redis.commands.core import Script

from tamma_trio.delivery import Delivery, DeliveryRecord
from tamma_trio.errors import StoreError, TaskNotFoundError
from tamma_trio.models import (
    NewTask,
    QueueStats,
    Task,
    TaskEvent,
    TaskPriority,
    TaskStatus,
    TaskType,
    ThroughputBucket,
)
from tamma_trio.resource import Resource
from tamma_trio.store import lifecycle, redis_deliveries
from tamma_trio.store import redis_codec as codec
from tamma_trio.store.base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_QUARANTINE_AFTER,
    TEXT_SEARCH_WINDOW,
    WallClock,
)
from tamma_trio.store.lifecycle import EventSpec
from tamma_trio.store.redis_batch import ScriptBatcher
from tamma_trio.store.redis_events import EVENT_SCRIPTS, RedisEventMethods
from tamma_trio.store.redis_housekeeping import PRUNE, PRUNE_EVENTS
from tamma_trio.store.redis_leases import expired_leases, reclaim_arguments
from tamma_trio.store.redis_scripts import PRELUDE, SCRIPTS
from tamma_trio.store.redis_server import (
    Calls,
    check_durability,
    connect,
    describe,
    read_durability,
)
from tamma_trio.store.sqlite_rows import dumps

T = TypeVar("T")

SINGLE_HOST_RULE = (
    "several daemons share a Redis store, so a task of another boot is not an orphan: only an "
    "expired lease frees it (reclaim_expired)"
)


class RedisStore(RedisEventMethods, Resource):
    """TaskStore on a Redis (or Valkey) server (see the module docstring)."""

    single_daemon = False

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tamma",
        require_aof: bool = False,
        clock: WallClock = time.time,
        boot_id: str | None = None,
        quarantine_after: int = DEFAULT_QUARANTINE_AFTER,
    ) -> None:
        self.boot_id = boot_id or lifecycle.new_boot_id()
        self.require_aof = require_aof
        self._url = url
        self._base = codec.key_base(prefix)
        self._clock = clock
        self._quarantine_after = quarantine_after
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Script] = {}
        self._calls = Calls("redis")
        self._batcher = ScriptBatcher(self._calls)

    # --- life ------------------------------------------------------------------------------
    async def _open(self) -> None:
        client = connect(self._url)
        self._calls = Calls(describe(client))
        self._batcher = ScriptBatcher(self._calls)
        self._scripts = {
            name: client.register_script(PRELUDE + body)
            for name, body in {
                **SCRIPTS,
                **redis_deliveries.SCRIPTS,
                **EVENT_SCRIPTS,
                "prune": PRUNE,
                "prune_events": PRUNE_EVENTS,
            }.items()
        }
        try:
            await self._calls.run(lambda: self._prepare(client))
        except BaseException:
            client.close()
            raise
        self._client = client

    def _prepare(self, client: redis.Redis) -> None:
        client.hsetnx(self._key("meta"), "schema", codec.SCHEMA_VERSION)
        found = cast(str | None, client.hget(self._key("meta"), "schema"))
        codec.check_schema(found, self._calls.where)
        durability = read_durability(client)
        check_durability(durability, self._calls.where, require_aof=self.require_aof)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def ping(self) -> None:
        await self._run(lambda client: client.ping())

    def lock_for_daemon(self) -> None:
        """Refused: several daemons share this store by design (``single_daemon`` is False)."""
        raise StoreError(f"no one-daemon lock on a Redis store: {SINGLE_HOST_RULE}")

    # --- intake ---------------------------------------------------------------------------
    async def add(self, new: NewTask) -> tuple[Task, bool]:
        return (await self.add_many([new]))[0]

    async def add_many(self, news: Sequence[NewTask]) -> list[tuple[Task, bool]]:
        if not news:
            return []
        args = [codec.seconds(self._clock()), *codec.add_arguments(news)]
        answers = await self._script("add", args)
        return [(codec.task_from_flat(flat), bool(created)) for created, _id, flat in answers]

    async def add_delivery(
        self, record: DeliveryRecord, news: Sequence[NewTask]
    ) -> tuple[Delivery, list[tuple[Task, bool]]]:
        field = redis_deliveries.field_of(record.forge, record.delivery_id)
        args = [
            codec.seconds(self._clock()),
            field,
            redis_deliveries.record_json(record),
            *codec.add_arguments(news),
        ]
        _created, stored, answers = await self._script("add_delivery", args)
        tasks = [(codec.task_from_flat(flat), bool(new)) for new, _id, flat in answers]
        return redis_deliveries.delivery_from_json(stored), tasks

    # --- reads ----------------------------------------------------------------------------
    async def get_delivery(self, forge: str, delivery_id: str) -> Delivery | None:
        field = redis_deliveries.field_of(forge, delivery_id)
        text = await self._run(lambda client: client.hget(self._key("deliveries"), field))
        return None if text is None else redis_deliveries.delivery_from_json(cast(str, text))

    async def list_deliveries(self, *, limit: int = 50, offset: int = 0) -> list[Delivery]:
        lifecycle.check_page(limit, offset)
        if limit == 0:
            return []

        def read(client: redis.Redis) -> list[str | None]:
            ids = self._key("deliveries:ids")
            fields = cast(list[str], client.zrevrange(ids, offset, offset + limit - 1))
            if not fields:
                return []
            return cast(list[str | None], client.hmget(self._key("deliveries"), fields))

        texts = await self._run(read)
        return [redis_deliveries.delivery_from_json(text) for text in texts if text is not None]

    async def prune_deliveries(self, before: float) -> int:
        return int(await self._script("prune_deliveries", [codec.seconds(before)]))

    async def tasks_of_subject(self, subject: str, limit: int = 20) -> list[Task]:
        def read(client: redis.Redis) -> list[list[str]]:
            key = self._key(f"subject:{subject}")
            ids = cast(list[str], client.zrevrange(key, 0, limit - 1))
            pipe = client.pipeline(transaction=False)
            for task_id in ids:
                pipe.hgetall(self._task_key(task_id))
            return [_flat(mapping) for mapping in pipe.execute() if mapping]

        if limit <= 0:
            return []
        return [codec.task_from_flat(flat) for flat in await self._run(read)]

    async def get(self, task_id: int) -> Task:
        key = self._task_key(task_id)
        flat = await self._run(lambda client: _flat(cast(dict[str, str], client.hgetall(key))))
        if not flat:
            raise TaskNotFoundError(task_id)
        return codec.task_from_flat(flat)

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        type: TaskType | None = None,
        repository: str | None = None,
        text: str | None = None,
        before: int | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Task]:
        lifecycle.check_page(limit, offset)
        filters = [
            "" if status is None else TaskStatus(status).value,
            "" if type is None else TaskType(type).value,
            repository or "",
            text or "",
            "" if before is None else int(before),
        ]
        answers = await self._script("list", [*filters, limit, offset, TEXT_SEARCH_WINDOW])
        return [codec.task_from_flat(flat) for flat in answers]

    async def throughput(self, since: float, bucket_seconds: int) -> list[ThroughputBucket]:
        def read(client: redis.Redis) -> list[list[tuple[str, float]]]:
            pipe = client.pipeline(transaction=True)
            for status in _ENDED:
                pipe.zrangebyscore(self._key(f"ended:{status}"), since, "+inf", withscores=True)
            return cast(list[list[tuple[str, float]]], pipe.execute())

        ended = dict(zip(_ENDED, await self._run(read), strict=True))
        return codec.throughput_buckets(ended, since, bucket_seconds)

    async def events(self, task_id: int) -> list[TaskEvent]:
        def read(client: redis.Redis) -> tuple[int, list[str]]:
            pipe = client.pipeline(transaction=True)
            pipe.exists(self._task_key(task_id))
            pipe.lrange(self._key(f"events:{task_id}"), 0, -1)
            exists, events = pipe.execute()
            return int(exists), list(events)

        exists, texts = await self._run(read)
        if not exists:
            raise TaskNotFoundError(task_id)
        return [codec.event_from_json(task_id, text) for text in texts]

    async def stats(self) -> QueueStats:
        statuses = list(TaskStatus)
        answer = await self._script("stats", [status.value for status in statuses])
        counts = dict(zip(statuses, (int(n) for n in answer[:-1]), strict=True))
        oldest = None if answer[-1] is None else float(answer[-1])
        return QueueStats(
            by_status=counts,
            queue_depth=counts[TaskStatus.QUEUED],
            oldest_queued_age=lifecycle.oldest_age(self._clock(), oldest),
        )

    async def queued_by_priority(self) -> dict[TaskPriority, int]:
        answer = await self._script("queued_by_priority", [])
        return {priority: int(answer[int(priority)]) for priority in TaskPriority}

    async def next_due(self) -> float | None:
        first = await self._run(
            lambda client: client.zrange(self._key("due"), 0, 0, withscores=True)
        )
        return float(first[0][1]) if first else None

    # --- the worker's side ----------------------------------------------------------------
    async def claim(self, limit: int, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> list[Task]:
        now = self._clock()
        expires = lifecycle.lease_expiry(now, lease_seconds)
        if limit <= 0:
            return []
        tokens = [lifecycle.new_lease_token() for _ in range(limit)]
        spec = codec.spec_json(lifecycle.claimed(0, self.boot_id))
        args = [codec.seconds(now), limit, codec.seconds(expires), self.boot_id, spec, *tokens]
        return [codec.task_from_flat(flat) for flat in await self._script("claim", args)]

    async def extend_leases(self, tokens: Sequence[str], lease_seconds: float) -> set[str]:
        expires = lifecycle.lease_expiry(self._clock(), lease_seconds)
        if not tokens:
            return set()
        return set(await self._script("extend", [codec.seconds(expires), *tokens]))

    async def save_progress(self, task_id: int, token: str, progress: dict[str, Any]) -> None:
        answer = await self._script("save_progress", [task_id, token, dumps(progress)])
        codec.check_leased_answer(task_id, answer)

    async def record_event(
        self, task_id: int, kind: str, detail: dict[str, Any], actor: str = "worker"
    ) -> None:
        spec = codec.spec_json(EventSpec(kind, actor, None, detail))
        args = [task_id, codec.seconds(self._clock()), spec]
        if not await self._script("record_event", args):
            raise TaskNotFoundError(task_id)

    async def complete(self, task_id: int, token: str, result: dict[str, Any]) -> None:
        spec = codec.spec_json(lifecycle.completed(0))
        await self._end("complete", task_id, token, dumps(result), spec)

    async def retry_later(
        self, task_id: int, token: str, error: str, not_before: float, *, defer: bool = False
    ) -> None:
        spec = codec.spec_json(lifecycle.ended_for_retry(0, error, not_before, defer))
        when = codec.seconds(not_before)
        await self._end("retry_later", task_id, token, error, when, spec, "1" if defer else "")

    async def fail(self, task_id: int, token: str, error: str) -> None:
        spec = codec.spec_json(lifecycle.failed(0, error))
        await self._end("fail", task_id, token, error, spec)

    async def release(self, task_id: int, token: str, reason: str) -> None:
        await self._end("release", task_id, token, codec.spec_json(lifecycle.released(reason)))

    async def _end(self, script: str, task_id: int, token: str, *values: str) -> None:
        args = [task_id, token, codec.seconds(self._clock()), *values]
        codec.check_leased_answer(task_id, await self._script(script, args))

    async def recover_orphans(self) -> list[Task]:
        """Refused: ``single_daemon`` is False, see SINGLE_HOST_RULE."""
        raise StoreError(f"no orphan recovery on a Redis store: {SINGLE_HOST_RULE}")

    async def reclaim_expired(self) -> list[Task]:
        now = self._clock()
        leases = await self._run(lambda client: expired_leases(client, self._base, now))
        reclaimed = []
        for lease in leases:
            args = reclaim_arguments(lease, now, self._quarantine_after)
            flat = await self._script("reclaim", args)
            if flat:  # None: renewed or reclaimed by another daemon meanwhile
                reclaimed.append(codec.task_from_flat(flat))
        return reclaimed

    # --- operator actions -----------------------------------------------------------------
    async def cancel(self, task_id: int, actor: str = "cli") -> Task:
        specs = [
            codec.spec_json(lifecycle.cancelled(previous, actor))
            for previous in (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS)
        ]
        answer = await self._script("cancel", [task_id, codec.seconds(self._clock()), *specs])
        return codec.operator_answer(task_id, answer, TaskStatus.CANCELLED)

    async def retry(self, task_id: int, actor: str = "cli") -> Task:
        specs = [
            codec.spec_json(lifecycle.retried(previous, actor))
            for previous in (TaskStatus.FAILED, TaskStatus.CANCELLED)
        ]
        answer = await self._script("retry", [task_id, codec.seconds(self._clock()), *specs])
        return codec.operator_answer(task_id, answer, TaskStatus.QUEUED)

    # --- housekeeping ---------------------------------------------------------------------
    async def prune(
        self,
        finished_before: float,
        statuses: Collection[TaskStatus],
        limit: int,
        *,
        dry_run: bool = False,
    ) -> list[int]:
        wanted = lifecycle.check_prune(statuses, limit)
        cutoff = codec.seconds(finished_before)
        answer = await self._script("prune", [cutoff, limit, "1" if dry_run else "0", *wanted])
        return [int(task_id) for task_id in answer]

    # --- internals ------------------------------------------------------------------------
    def _key(self, name: str) -> str:
        return self._base + name

    def _task_key(self, task_id: int | str) -> str:
        return f"{self._base}task:{task_id}"

    async def _script(self, name: str, args: Sequence[object]) -> Any:
        client = self._client
        if client is None:
            raise StoreError("the redis task store is not open")
        return await self._batcher.run(client, self._scripts[name], [self._base, *args])

    async def _run(self, call: Callable[[redis.Redis], T]) -> T:
        client = self._client
        if client is None:
            raise StoreError("the redis task store is not open")
        return await self._calls.run(lambda: call(client))


_ENDED = (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value)


def _flat(mapping: dict[str, str]) -> list[str]:
    return [item for pair in mapping.items() for item in pair]
