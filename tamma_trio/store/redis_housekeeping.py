"""The Redis store's prune script: finished tasks older than a cutoff go, with every index entry.

Completed and failed tasks are found through ``ended:<status>`` (scored by finished_at);
cancelled ones have no such index, so their set is read whole (operators cancel rarely). One
script run deletes one batch atomically, so a concurrent list or stats never sees half a task.
"""

from __future__ import annotations

# ARGV: P, cutoff (exclusive), limit, dry run ('1' or '0'), then the statuses to prune.
# Answers the ids, oldest finished first.
PRUNE = """
local cutoff, limit, dry = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local found = {}
for i = 5, #ARGV do
  local status = ARGV[i]
  if status == 'cancelled' then
    for _, id in ipairs(redis.call('ZRANGE', key('status:cancelled'), 0, -1)) do
      local finished = tonumber(redis.call('HGET', task_key(id), 'finished_at'))
      if finished and finished < cutoff then found[#found + 1] = {finished, tonumber(id)} end
    end
  else
    local ended = redis.call('ZRANGEBYSCORE', key('ended:') .. status, '-inf', '(' .. ARGV[2],
      'WITHSCORES', 'LIMIT', 0, limit)
    for j = 1, #ended, 2 do
      found[#found + 1] = {tonumber(ended[j + 1]), tonumber(ended[j])}
    end
  end
end
table.sort(found, function(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[2] < b[2]
end)
local ids = {}
for i = 1, math.min(limit, #found) do ids[i] = found[i][2] end
if dry then return ids end
for _, id in ipairs(ids) do
  local t = task_key(id)
  local fields = redis.call('HMGET', t, 'status', 'type', 'key')
  redis.call('ZREM', key('ids'), id)
  redis.call('ZREM', key('status:') .. fields[1], id)
  redis.call('ZREM', key('type:') .. fields[2], id)
  redis.call('ZREM', key('ended:') .. fields[1], id)
  if fields[3] and redis.call('HGET', key('keys'), fields[3]) == tostring(id) then
    redis.call('HDEL', key('keys'), fields[3])
  end
  redis.call('DEL', t, key('events:') .. id)
end
return ids
"""

# ARGV: P, before, dead_before, limit, dry run ('1' or '0'). Answers {events, notifications}.
# Notifications are numbered in publish order, so each status set is walked by id and the walk
# stops at the first event too young to matter. Deliveries that stay (pending, not expired, or
# beyond this call's limit) keep their events.
PRUNE_EVENTS = """
local before, dead, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local dry = ARGV[5] == '1'
local function event_at(id)
  local found = redis.call('ZRANGEBYSCORE', key('sevents'), id, id)
  if #found == 0 then return nil end
  return tonumber(cjson.decode(found[1]).at)
end
local keep, doomed = {}, {}
local function walk(status, stop)
  for _, d in ipairs(redis.call('ZRANGE', key('nt:status:') .. status, 0, -1)) do
    local fields = redis.call('HMGET', key('notification:') .. d, 'event_id', 'delivered_at')
    local at = event_at(fields[1])
    if at == nil or at >= stop then return end
    local expired = at < dead
    if status == 'delivered' then expired = tonumber(fields[2]) < before end
    if expired and #doomed < limit then
      doomed[#doomed + 1] = {d, status}
    else
      keep[tostring(tonumber(fields[1]))] = true
    end
  end
end
walk('delivered', before)
walk('dead', math.max(before, dead))
for _, d in ipairs(redis.call('ZRANGE', key('nt:status:pending'), 0, -1)) do
  keep[tostring(tonumber(redis.call('HGET', key('notification:') .. d, 'event_id')))] = true
end
if not dry then
  for _, pair in ipairs(doomed) do
    redis.call('DEL', key('notification:') .. pair[1])
    redis.call('ZREM', key('nt:ids'), pair[1])
    redis.call('ZREM', key('nt:status:') .. pair[2], pair[1])
  end
end
local events = 0
for _, text in ipairs(redis.call('ZRANGE', key('sevents'), 0, -1)) do
  local event = cjson.decode(text)
  if tonumber(event.at) >= before or events >= limit then break end
  if not keep[tostring(tonumber(event.id))] then
    events = events + 1
    if not dry then redis.call('ZREM', key('sevents'), text) end
  end
end
return {events, #doomed}
"""
