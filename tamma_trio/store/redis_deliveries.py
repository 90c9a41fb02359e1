"""The Redis store's deliveries log: scripts and conversions.

A delivery and its tasks are written by one script, so, as on SQLite, a delivery is logged if
and only if its tasks are stored. A logged delivery is one JSON value in the ``deliveries``
hash under ``"<forge> <delivery id>"``; its number comes from ``seq:delivery``.
"""

from __future__ import annotations

import json
from typing import Any

from tamma_trio.delivery import Delivery, DeliveryRecord
from tamma_trio.store import lifecycle
from tamma_trio.store.redis_scripts import ADD_TASKS

# ARGV: P, now, field, the delivery as JSON without id, then the tasks as for ADD.
# Answers {0, stored json, {}} for a known delivery, else {1, stored json, add_tasks answers}.
ADD_DELIVERY = (
    ADD_TASKS
    + """
local now, field = ARGV[2], ARGV[3]
local known = redis.call('HGET', key('deliveries'), field)
if known then return {0, known, {}} end
local added = add_tasks(now, 5)
local ids = {}
for _, answer in ipairs(added) do ids[#ids + 1] = tostring(answer[2]) end
local id = redis.call('INCR', key('seq:delivery'))
local stored = '{"id":' .. id .. ',"received_at":' .. now .. ',"created_task_ids":['
  .. table.concat(ids, ',') .. '],' .. string.sub(ARGV[4], 2)
redis.call('HSET', key('deliveries'), field, stored)
redis.call('ZADD', key('deliveries:ids'), id, field)
redis.call('ZADD', key('deliveries:time'), now, field)
return {1, stored, added}
"""
)

# ARGV: P, before. Answers how many deliveries were forgotten.
PRUNE_DELIVERIES = """
local old = redis.call('ZRANGEBYSCORE', key('deliveries:time'), '-inf', '(' .. ARGV[2])
for _, field in ipairs(old) do
  redis.call('HDEL', key('deliveries'), field)
  redis.call('ZREM', key('deliveries:ids'), field)
  redis.call('ZREM', key('deliveries:time'), field)
end
return #old
"""

SCRIPTS = {"add_delivery": ADD_DELIVERY, "prune_deliveries": PRUNE_DELIVERIES}


def field_of(forge: str, delivery_id: str) -> str:
    return f"{forge} {delivery_id}"


def record_json(record: DeliveryRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), separators=(",", ":"))


def delivery_from_json(text: str) -> Delivery:
    data: dict[str, Any] = json.loads(text)
    created = data.pop("created_task_ids")
    data["task_ids"] = [*data["task_ids"], *created]
    data["received_at"] = lifecycle.utc(float(data["received_at"]))
    return Delivery.model_validate(data)
