"""The Redis store's Lua scripts: every step that touches more than one key runs as one script.

Redis runs a script without interleaving any other command, so a claim by one daemon and a
complete or a reclaim by another can never see each other half done. The layout under the
prefix ``P`` (a hash tag, ``{tamma}:``, so a cluster keeps every key of one store on one slot):

=================  =========================================================================
subject:<subject>  sorted set of the subject's task ids (commands act on one issue's tasks)
deliveries         hash "<forge> <delivery id>" -> the logged delivery as JSON
deliveries:ids,    sorted sets of those fields, scored by delivery id and by received_at
deliveries:time
task:<id>          hash of the task's fields (times as epoch seconds, JSON fields as text)
events:<id>        list of the task's events, oldest first (append-only)
ids, status:<s>,   sorted sets of task ids scored by id, for lists newest first and counts
type:<t>
ended:<s>          completed and failed tasks scored by finished_at (throughput)
ready              queued tasks that are due, scored in claim order (priority, then id)
waiting            queued tasks whose not_before is still ahead, scored by not_before
due                every queued task scored by not_before (next_due)
active             hash subject -> id of the in_progress task holding that subject
tokens, leases     hash lease token -> id; sorted set id scored by lease expiry
keys               hash idempotency key -> id
seq:task/event     counters for ids
=================  =========================================================================

Times travel as the caller's decimal text and are stored as given: Lua's own number-to-text
conversion keeps only 14 digits, which would round microseconds away. Event details come
from lifecycle.py as JSON and are stored verbatim inside an envelope ``{"id", "at",
"attempt"?, "spec"}``; the script adds only what it alone knows (the attempt number).
"""

from __future__ import annotations

from tamma_trio.store.redis_reads import READ_SCRIPTS

PRELUDE = """
local P = ARGV[1]
local function key(name) return P .. name end
local function task_key(id) return P .. 'task:' .. id end

local function order_score(priority, id)
  return string.format('%.0f', (3 - tonumber(priority)) * 1e12 + tonumber(id))
end

local function append_event(id, spec, now, attempt)
  local event_id = redis.call('INCR', key('seq:event'))
  local head = '{"id":' .. event_id .. ',"at":' .. now
  if attempt then head = head .. ',"attempt":' .. attempt end
  redis.call('RPUSH', key('events:') .. id, head .. ',"spec":' .. spec .. '}')
end

local function set_status(id, old, new)
  redis.call('ZREM', key('status:') .. old, id)
  redis.call('ZADD', key('status:') .. new, id, id)
  redis.call('HSET', task_key(id), 'status', new)
end

-- completed and failed tasks by the time they ended (``finished_at`` = now)
local function mark_ended(id, status, now)
  redis.call('ZADD', key('ended:') .. status, now, id)
  redis.call('HSET', task_key(id), 'finished_at', now)
end

local function queue(id, not_before, now)
  local t = task_key(id)
  if tonumber(not_before) <= tonumber(now) then
    local score = order_score(redis.call('HGET', t, 'priority'), id)
    redis.call('ZADD', key('ready'), score, id)
  else
    redis.call('ZADD', key('waiting'), not_before, id)
  end
  redis.call('ZADD', key('due'), not_before, id)
  redis.call('HSET', t, 'not_before', not_before)
end

local function unqueue(id)
  redis.call('ZREM', key('ready'), id)
  redis.call('ZREM', key('waiting'), id)
  redis.call('ZREM', key('due'), id)
end

local function drop_lease(id)
  local t = task_key(id)
  local token = redis.call('HGET', t, 'lease_token')
  if token then redis.call('HDEL', key('tokens'), token) end
  local subject = redis.call('HGET', t, 'subject')
  if redis.call('HGET', key('active'), subject) == tostring(id) then
    redis.call('HDEL', key('active'), subject)
  end
  redis.call('ZREM', key('leases'), id)
  redis.call('HDEL', t, 'lease_owner', 'lease_token', 'lease_expires')
end

local function refund_attempt(id)
  local attempts = tonumber(redis.call('HGET', task_key(id), 'attempts'))
  redis.call('HSET', task_key(id), 'attempts', math.max(attempts - 1, 0))
end

-- nil when ``token`` holds the task, else the answer the caller turns into an error
local function check_lease(id, token)
  local held = redis.call('HMGET', task_key(id), 'status', 'lease_token')
  if not held[1] then return {'missing'} end
  if held[1] ~= 'in_progress' or held[2] ~= token then return {'lost', held[1]} end
  return nil
end

-- how every ending starts: the lease checked, then dropped, the task moved to ``status``;
-- nil when done, else the refusal to answer with
local function end_lease(id, token, status)
  local refused = check_lease(id, token)
  if refused then return refused end
  drop_lease(id)
  set_status(id, 'in_progress', status)
  return nil
end
"""

# Adds the tasks given as ARGV[first..] (seven values each, see ADD); {created, id, fields} each.
ADD_TASKS = """
local function add_tasks(now, first)
  local out = {}
  for i = first, #ARGV, 7 do
    local idem, kind, priority = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local known = false
    if idem ~= '' then known = redis.call('HGET', key('keys'), idem) end
    if known then
      out[#out + 1] = {0, known, redis.call('HGETALL', task_key(known))}
    else
      local id = redis.call('INCR', key('seq:task'))
      local t = task_key(id)
      redis.call('HSET', t, 'id', id, 'type', kind, 'priority', priority,
        'payload', ARGV[i + 3], 'status', 'queued', 'attempts', 0, 'max_retries', ARGV[i + 4],
        'created_at', now, 'subject', ARGV[i + 5], 'interruptions', 0, 'progress', '{}')
      if idem ~= '' then
        redis.call('HSET', key('keys'), idem, id)
        redis.call('HSET', t, 'key', idem)
      end
      redis.call('ZADD', key('ids'), id, id)
      redis.call('ZADD', key('status:queued'), id, id)
      redis.call('ZADD', key('type:') .. kind, id, id)
      redis.call('ZADD', key('subject:') .. ARGV[i + 5], id, id)
      queue(id, now, now)
      append_event(id, ARGV[i + 6], now)
      out[#out + 1] = {1, id, redis.call('HGETALL', t)}
    end
  end
  return out
end
"""

# ARGV: P, now, then per task: key ('' for none), type, priority, payload, max_retries,
# subject, enqueued spec. Answers {created, id, fields} per task.
ADD = (
    ADD_TASKS
    + """
return add_tasks(ARGV[2], 3)
"""
)

# ARGV: P, now, limit, lease expiry, boot id, claimed spec, one fresh token per slot.
CLAIM = """
local now, limit, expires, boot, spec = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
for _, id in ipairs(redis.call('ZRANGEBYSCORE', key('waiting'), '-inf', now)) do
  redis.call('ZREM', key('waiting'), id)
  local score = order_score(redis.call('HGET', task_key(id), 'priority'), id)
  redis.call('ZADD', key('ready'), score, id)
end
local picked, busy, offset = {}, {}, 0
while #picked < limit do
  local batch = redis.call('ZRANGE', key('ready'), offset, offset + 99)
  if #batch == 0 then break end
  for _, id in ipairs(batch) do
    local subject = redis.call('HGET', task_key(id), 'subject')
    if not busy[subject] and redis.call('HEXISTS', key('active'), subject) == 0 then
      busy[subject] = true
      picked[#picked + 1] = id
      if #picked >= limit then break end
    end
  end
  offset = offset + 100
end
local out = {}
for i, id in ipairs(picked) do
  local t, token = task_key(id), ARGV[6 + i]
  unqueue(id)
  set_status(id, 'queued', 'in_progress')
  local attempts = redis.call('HINCRBY', t, 'attempts', 1)
  redis.call('HSET', t, 'started_at', now, 'lease_owner', boot, 'lease_token', token,
    'lease_expires', expires)
  redis.call('HSET', key('active'), redis.call('HGET', t, 'subject'), id)
  redis.call('HSET', key('tokens'), token, id)
  redis.call('ZADD', key('leases'), expires, id)
  append_event(id, spec, now, attempts)
  out[i] = redis.call('HGETALL', t)
end
return out
"""

# ARGV: P, lease expiry, tokens. Answers the tokens still held.
EXTEND = """
local held = {}
for i = 3, #ARGV do
  local id = redis.call('HGET', key('tokens'), ARGV[i])
  if id then
    redis.call('HSET', task_key(id), 'lease_expires', ARGV[2])
    redis.call('ZADD', key('leases'), ARGV[2], id)
    held[#held + 1] = ARGV[i]
  end
end
return held
"""

# The four endings. ARGV: P, id, token, now, then their own values; answer {'ok'} or a refusal.
COMPLETE = """
local id, now = ARGV[2], ARGV[4]
local refused = end_lease(id, ARGV[3], 'completed')
if refused then return refused end
mark_ended(id, 'completed', now)
redis.call('HSET', task_key(id), 'result', ARGV[5])
redis.call('HDEL', task_key(id), 'error')
append_event(id, ARGV[6], now, redis.call('HGET', task_key(id), 'attempts'))
return {'ok'}
"""

# ARGV[8] is '1' for a deferral: the attempt is refunded, and the event names the one given back.
RETRY_LATER = """
local id, now = ARGV[2], ARGV[4]
local refused = end_lease(id, ARGV[3], 'queued')
if refused then return refused end
local attempt = redis.call('HGET', task_key(id), 'attempts')
if ARGV[8] == '1' then refund_attempt(id) end
redis.call('HSET', task_key(id), 'error', ARGV[5])
queue(id, ARGV[6], now)
append_event(id, ARGV[7], now, attempt)
return {'ok'}
"""

FAIL = """
local id, now = ARGV[2], ARGV[4]
local refused = end_lease(id, ARGV[3], 'failed')
if refused then return refused end
mark_ended(id, 'failed', now)
redis.call('HSET', task_key(id), 'error', ARGV[5])
append_event(id, ARGV[6], now, redis.call('HGET', task_key(id), 'attempts'))
return {'ok'}
"""

RELEASE = """
local id, now = ARGV[2], ARGV[4]
local refused = end_lease(id, ARGV[3], 'queued')
if refused then return refused end
refund_attempt(id)
queue(id, now, now)
append_event(id, ARGV[5], now)
return {'ok'}
"""

# ARGV: P, id, token, progress JSON.
SAVE_PROGRESS = """
local refused = check_lease(ARGV[2], ARGV[3])
if refused then return refused end
redis.call('HSET', task_key(ARGV[2]), 'progress', ARGV[4])
return {'ok'}
"""

# ARGV: P, id, token seen expired, now, spec, 'queued' or 'failed', interruptions, error.
# Answers the task's fields, or nil when the lease moved on meanwhile (renewed, or another
# daemon reclaimed it first).
RECLAIM = """
local id, now, outcome = ARGV[2], ARGV[4], ARGV[6]
local t = task_key(id)
local held = redis.call('HMGET', t, 'status', 'lease_token', 'lease_expires')
if held[1] ~= 'in_progress' or held[2] ~= ARGV[3] or tonumber(held[3]) > tonumber(now) then
  return false
end
drop_lease(id)
refund_attempt(id)
redis.call('HSET', t, 'interruptions', ARGV[7])
set_status(id, 'in_progress', outcome)
if outcome == 'failed' then
  mark_ended(id, 'failed', now)
  redis.call('HSET', t, 'error', ARGV[8])
else
  queue(id, now, now)
end
append_event(id, ARGV[5], now)
return redis.call('HGETALL', t)
"""

# ARGV: P, id, now, spec if it was queued, spec if it was in_progress.
CANCEL = """
local id, now = ARGV[2], ARGV[3]
local status = redis.call('HGET', task_key(id), 'status')
if not status then return {'missing'} end
local spec
if status == 'queued' then
  unqueue(id)
  spec = ARGV[4]
elseif status == 'in_progress' then
  drop_lease(id)
  spec = ARGV[5]
else
  return {'refused', status}
end
set_status(id, status, 'cancelled')
redis.call('HSET', task_key(id), 'finished_at', now)
append_event(id, spec, now)
return {'ok', redis.call('HGETALL', task_key(id))}
"""

# ARGV: P, id, now, spec if it was failed, spec if it was cancelled.
RETRY = """
local id, now = ARGV[2], ARGV[3]
local t = task_key(id)
local status = redis.call('HGET', t, 'status')
if not status then return {'missing'} end
local spec
if status == 'failed' then spec = ARGV[4]
elseif status == 'cancelled' then spec = ARGV[5]
else return {'refused', status} end
set_status(id, status, 'queued')
redis.call('ZREM', key('ended:failed'), id)
redis.call('HSET', t, 'attempts', 0, 'interruptions', 0)
redis.call('HDEL', t, 'error', 'result', 'finished_at')
queue(id, now, now)
append_event(id, spec, now)
return {'ok', redis.call('HGETALL', t)}
"""

# ARGV: P, id, now, spec. Answers 0 for an unknown task.
RECORD_EVENT = """
if redis.call('EXISTS', task_key(ARGV[2])) == 0 then return 0 end
append_event(ARGV[2], ARGV[4], ARGV[3])
return 1
"""

SCRIPTS = {
    "add": ADD,
    "claim": CLAIM,
    "extend": EXTEND,
    "complete": COMPLETE,
    "retry_later": RETRY_LATER,
    "fail": FAIL,
    "release": RELEASE,
    "save_progress": SAVE_PROGRESS,
    "reclaim": RECLAIM,
    "cancel": CANCEL,
    "retry": RETRY,
    "record_event": RECORD_EVENT,
    **READ_SCRIPTS,
}
