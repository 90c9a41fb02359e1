"""The Redis store's read-only scripts: lists with filters, counts, the queue by priority.

They run inside Redis for the same reason as the writes in redis_scripts.py: a list filtered on
several fields, or counts taken together, read one consistent state in one round trip. Each is
appended to redis_scripts.PRELUDE, whose ``key`` and ``task_key`` they use.
"""

from __future__ import annotations

# ARGV: P, status, type, repository, text (each '' for any), before ('' for none), limit,
# offset, text window. Newest first; walks the narrowest index and filters the rest, reading
# at most ``window`` tasks that pass the other filters when searching text (ASCII case folded,
# like SQLite's LIKE: Lua's string.lower knows only ASCII in the C locale).
LIST = """
local status, kind, repo, text = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local limit, skip, window = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local out = {}
if limit == 0 then return out end
local source = key('ids')
if status ~= '' then source = key('status:') .. status
elseif kind ~= '' then source = key('type:') .. kind end
local highest = '+inf'
if ARGV[6] ~= '' then highest = '(' .. ARGV[6] end
local needle, prefix = string.lower(text), repo .. '#'
local function has_text(t)
  local found = redis.call('HMGET', t, 'payload', 'error', 'result')
  for i = 1, 3 do
    if found[i] and string.find(string.lower(found[i]), needle, 1, true) then return true end
  end
  return false
end
local searched, position = 0, 0
while true do
  local batch = redis.call('ZREVRANGEBYSCORE', source, highest, '-inf', 'LIMIT', position, 200)
  if #batch == 0 then return out end
  for _, id in ipairs(batch) do
    local t = task_key(id)
    local fields = redis.call('HMGET', t, 'type', 'subject')
    local wanted = (kind == '' or fields[1] == kind)
      and (repo == '' or string.sub(fields[2], 1, #prefix) == prefix)
    if wanted and text ~= '' then
      searched = searched + 1
      if searched > window then return out end
      wanted = has_text(t)
    end
    if wanted then
      if skip > 0 then skip = skip - 1
      else
        out[#out + 1] = redis.call('HGETALL', t)
        if #out >= limit then return out end
      end
    end
  end
  position = position + 200
end
"""

# ARGV: P, then the statuses. Answers {count per status..., oldest queued created_at or false}.
STATS = """
local out = {}
for i = 2, #ARGV do out[#out + 1] = redis.call('ZCARD', key('status:') .. ARGV[i]) end
local oldest = redis.call('ZRANGE', key('status:queued'), 0, 0)
if #oldest == 0 then out[#out + 1] = false
else out[#out + 1] = redis.call('HGET', task_key(oldest[1]), 'created_at') end
return out
"""

# Queued tasks by priority: due ones by their claim-order score range, waiting ones one by one
# (a retry's backoff; few at any time). Answers {count for priority 0, 1, 2, 3}.
QUEUED_BY_PRIORITY = """
local out = {}
for p = 0, 3 do
  local low = (3 - p) * 1e12
  out[p + 1] = redis.call('ZCOUNT', key('ready'), string.format('%.0f', low),
    '(' .. string.format('%.0f', low + 1e12))
end
for _, id in ipairs(redis.call('ZRANGE', key('waiting'), 0, -1)) do
  local p = tonumber(redis.call('HGET', task_key(id), 'priority'))
  out[p + 1] = out[p + 1] + 1
end
return out
"""


READ_SCRIPTS = {
    "list": LIST,
    "stats": STATS,
    "queued_by_priority": QUEUED_BY_PRIORITY,
}
