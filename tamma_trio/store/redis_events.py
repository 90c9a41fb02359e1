"""The Redis store's service event stream and webhook outbox: Lua scripts and decoding.

Layout under the store's prefix ``P`` (beside redis_scripts.py's):

======================  =====================================================================
sevents                 sorted set of event JSON ``{"id", "at", "event"}`` scored by id
notification:<id>       hash: event_id, target, status, attempts, next_attempt_at, last_error,
                        delivered_at (times as epoch seconds)
nt:pending              pending delivery ids (zero-padded, so equal times keep id order)
                        scored by next_attempt_at
nt:ids, nt:status:<s>   notification ids scored by id, for lists newest first
seq:sevent/notification     counters for ids
======================  =====================================================================

Publishing an event and queueing its deliveries is one script, like SQLite's one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import redis

from tamma_trio.service_events import (
    NewServiceEvent,
    Notification,
    NotificationStatus,
    PrunedEvents,
    ServiceEvent,
)
from tamma_trio.store import lifecycle
from tamma_trio.store import redis_codec as codec
from tamma_trio.store.base import WallClock
from tamma_trio.store.lifecycle import utc, utc_or_none

T = TypeVar("T")

PUBLISH = """
local now = ARGV[2]
local id = redis.call('INCR', key('seq:sevent'))
redis.call('ZADD', key('sevents'), id,
  '{"id":' .. id .. ',"at":' .. now .. ',"event":' .. ARGV[3] .. '}')
for i = 4, #ARGV do
  local d = redis.call('INCR', key('seq:notification'))
  redis.call('HSET', key('notification:') .. d, 'event_id', id, 'target', ARGV[i],
    'status', 'pending', 'attempts', 0, 'next_attempt_at', now)
  redis.call('ZADD', key('nt:pending'), now, string.format('%015d', d))
  redis.call('ZADD', key('nt:ids'), d, d)
  redis.call('ZADD', key('nt:status:pending'), d, d)
end
return id
"""

RECORD = """
local d, now, err, next_at = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local h = key('notification:') .. d
if redis.call('HGET', h, 'status') ~= 'pending' then return 0 end
redis.call('ZREM', key('nt:pending'), string.format('%015d', d))
redis.call('ZREM', key('nt:status:pending'), d)
local status = 'pending'
if err == '' then
  status = 'delivered'
  redis.call('HSET', h, 'status', status, 'delivered_at', now)
else
  redis.call('HINCRBY', h, 'attempts', 1)
  redis.call('HSET', h, 'last_error', err)
  if next_at == '' then
    status = 'dead'
    redis.call('HSET', h, 'status', status)
    redis.call('HDEL', h, 'next_attempt_at')
  else
    redis.call('HSET', h, 'next_attempt_at', next_at)
    redis.call('ZADD', key('nt:pending'), next_at, string.format('%015d', d))
  end
end
redis.call('ZADD', key('nt:status:') .. status, d, d)
return 1
"""

REDELIVER = """
local now = ARGV[2]
local ids = {}
if ARGV[3] == 'all' then
  ids = redis.call('ZRANGE', key('nt:status:dead'), 0, -1)
else
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local count = 0
for _, d in ipairs(ids) do
  local h = key('notification:') .. d
  if redis.call('HGET', h, 'status') == 'dead' then
    redis.call('HSET', h, 'status', 'pending', 'attempts', 0, 'next_attempt_at', now)
    redis.call('ZREM', key('nt:status:dead'), d)
    redis.call('ZADD', key('nt:status:pending'), d, d)
    redis.call('ZADD', key('nt:pending'), now, string.format('%015d', d))
    count = count + 1
  end
end
return count
"""

EVENT_SCRIPTS = {"publish": PUBLISH, "record_notification": RECORD, "renotify": REDELIVER}


def event_from_json(text: str) -> ServiceEvent:
    envelope = json.loads(text)
    return ServiceEvent(id=envelope["id"], at=utc(envelope["at"]), **envelope["event"])


def notification_from_hash(
    delivery_id: int, fields: dict[str, Any], event: ServiceEvent
) -> Notification:
    def seconds(name: str) -> float | None:
        value = fields.get(name)
        return None if value is None else float(value)

    return Notification(
        id=delivery_id,
        event=event,
        target=fields["target"],
        status=NotificationStatus(fields["status"]),
        attempts=int(fields["attempts"]),
        next_attempt_at=utc_or_none(seconds("next_attempt_at")),
        last_error=fields.get("last_error"),
        delivered_at=utc_or_none(seconds("delivered_at")),
    )


class RedisEventMethods:
    """The TaskStore methods of the event stream and outbox, for RedisStore to inherit."""

    _clock: WallClock

    def _key(self, name: str) -> str:
        raise NotImplementedError

    async def _script(self, name: str, args: Sequence[object]) -> Any:
        raise NotImplementedError

    async def _run(self, call: Callable[[redis.Redis], T]) -> T:
        raise NotImplementedError

    # --- service events and their webhook outbox ------------------------------------------
    async def publish(self, event: NewServiceEvent, targets: Sequence[str] = ()) -> ServiceEvent:
        now = codec.seconds(self._clock())
        body = event.model_dump_json()
        event_id = await self._script("publish", [now, body, *targets])
        return ServiceEvent(id=int(event_id), at=lifecycle.utc(float(now)), **event.model_dump())

    async def service_events(self, *, after: int = 0, limit: int = 100) -> list[ServiceEvent]:
        key = self._key("sevents")
        texts = await self._run(
            lambda client: cast(
                list[str], client.zrangebyscore(key, f"({after}", "+inf", start=0, num=limit)
            )
        )
        return [event_from_json(text) for text in texts]

    async def notifications(
        self, *, status: NotificationStatus | None = None, limit: int = 100
    ) -> list[Notification]:
        return await self._run(lambda client: self._read_notifications(client, status, limit))

    def _read_notifications(
        self, client: redis.Redis, status: NotificationStatus | None, limit: int
    ) -> list[Notification]:
        if status is NotificationStatus.PENDING:
            found = client.zrange(self._key("nt:pending"), 0, limit - 1)
        else:
            index = "nt:ids" if status is None else f"nt:status:{status.value}"
            found = client.zrevrange(self._key(index), 0, limit - 1)
        ids = [int(d) for d in cast(list[str], found)]
        pipe = client.pipeline(transaction=False)
        for delivery_id in ids:
            pipe.hgetall(self._key(f"notification:{delivery_id}"))
        hashes = cast(list[dict[str, str]], pipe.execute())
        for fields in hashes:
            event_id = fields["event_id"]
            pipe.zrangebyscore(self._key("sevents"), event_id, event_id)
        events = [event_from_json(found[0]) for found in pipe.execute()]
        return [
            notification_from_hash(d, fields, event)
            for d, fields, event in zip(ids, hashes, events, strict=True)
        ]

    async def record_notification(
        self, delivery_id: int, *, error: str | None, next_attempt: float | None = None
    ) -> None:
        when = "" if next_attempt is None else codec.seconds(next_attempt)
        now = codec.seconds(self._clock())
        await self._script("record_notification", [delivery_id, now, error or "", when])

    async def renotify(self, delivery_ids: Sequence[int] | None = None) -> int:
        which = ["all"] if delivery_ids is None else ["ids", *delivery_ids]
        return int(await self._script("renotify", [codec.seconds(self._clock()), *which]))

    async def prune_events(
        self, before: float, dead_before: float, limit: int, *, dry_run: bool = False
    ) -> PrunedEvents:
        lifecycle.check_limit(limit)
        cuts = [codec.seconds(before), codec.seconds(dead_before)]
        events, notes = await self._script("prune_events", [*cuts, limit, "1" if dry_run else "0"])
        return PrunedEvents(int(events), int(notes))
