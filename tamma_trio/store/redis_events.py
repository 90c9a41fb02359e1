"""The Redis store's service event stream and webhook outbox: Lua scripts and decoding.

Layout under the store's prefix ``P`` (beside redis_scripts.py's):

======================  =====================================================================
sevents                 sorted set of event JSON ``{"id", "at", "event"}`` scored by id
delivery:<id>           hash: event_id, target, status, attempts, next_attempt_at, last_error,
                        delivered_at (times as epoch seconds)
dl:pending              pending delivery ids (zero-padded, so equal times keep id order)
                        scored by next_attempt_at
dl:ids, dl:status:<s>   delivery ids scored by id, for lists newest first
seq:sevent/delivery     counters for ids
======================  =====================================================================

Publishing an event and queueing its deliveries is one script, like SQLite's one transaction.
"""

from __future__ import annotations

import json
from typing import Any

from tamma_trio.service_events import Delivery, DeliveryStatus, ServiceEvent
from tamma_trio.store.lifecycle import utc, utc_or_none

PUBLISH = """
local now = ARGV[2]
local id = redis.call('INCR', key('seq:sevent'))
redis.call('ZADD', key('sevents'), id,
  '{"id":' .. id .. ',"at":' .. now .. ',"event":' .. ARGV[3] .. '}')
for i = 4, #ARGV do
  local d = redis.call('INCR', key('seq:delivery'))
  redis.call('HSET', key('delivery:') .. d, 'event_id', id, 'target', ARGV[i],
    'status', 'pending', 'attempts', 0, 'next_attempt_at', now)
  redis.call('ZADD', key('dl:pending'), now, string.format('%015d', d))
  redis.call('ZADD', key('dl:ids'), d, d)
  redis.call('ZADD', key('dl:status:pending'), d, d)
end
return id
"""

RECORD = """
local d, now, err, next_at = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local h = key('delivery:') .. d
if redis.call('HGET', h, 'status') ~= 'pending' then return 0 end
redis.call('ZREM', key('dl:pending'), string.format('%015d', d))
redis.call('ZREM', key('dl:status:pending'), d)
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
    redis.call('ZADD', key('dl:pending'), next_at, string.format('%015d', d))
  end
end
redis.call('ZADD', key('dl:status:') .. status, d, d)
return 1
"""

REDELIVER = """
local now = ARGV[2]
local ids = {}
if ARGV[3] == 'all' then
  ids = redis.call('ZRANGE', key('dl:status:dead'), 0, -1)
else
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local count = 0
for _, d in ipairs(ids) do
  local h = key('delivery:') .. d
  if redis.call('HGET', h, 'status') == 'dead' then
    redis.call('HSET', h, 'status', 'pending', 'attempts', 0, 'next_attempt_at', now)
    redis.call('ZREM', key('dl:status:dead'), d)
    redis.call('ZADD', key('dl:status:pending'), d, d)
    redis.call('ZADD', key('dl:pending'), now, string.format('%015d', d))
    count = count + 1
  end
end
return count
"""

EVENT_SCRIPTS = {"publish": PUBLISH, "record_delivery": RECORD, "redeliver": REDELIVER}


def event_from_json(text: str) -> ServiceEvent:
    envelope = json.loads(text)
    return ServiceEvent(id=envelope["id"], at=utc(envelope["at"]), **envelope["event"])


def delivery_from_hash(delivery_id: int, fields: dict[str, Any], event: ServiceEvent) -> Delivery:
    def seconds(name: str) -> float | None:
        value = fields.get(name)
        return None if value is None else float(value)

    return Delivery(
        id=delivery_id,
        event=event,
        target=fields["target"],
        status=DeliveryStatus(fields["status"]),
        attempts=int(fields["attempts"]),
        next_attempt_at=utc_or_none(seconds("next_attempt_at")),
        last_error=fields.get("last_error"),
        delivered_at=utc_or_none(seconds("delivered_at")),
    )
