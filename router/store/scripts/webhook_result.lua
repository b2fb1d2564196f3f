--[[
webhook_result: record the outcome of one delivery attempt, if the sender
still holds its lease (a sender whose lease ran out while it waited on a slow
receiver changes nothing: another sender owns the delivery now). The one
exception: the sender of the last attempt, whose delivery webhook_take made a
dead letter when that lease ran out (its token is kept in `late`). Its `ok`
deletes the dead letter, since the event was delivered; its failure replaces
the dead letter's "no outcome recorded" with the real status and error.

  ok     delivered: the delivery is deleted
  retry  failed: due again at ARGV[5], lease released
  dead   failed for the last time: moved to the dead-letter set wh:dead
         (score = now); dead letters older than the retention, or beyond
         the cap (oldest first), are deleted, a bounded number per call

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  delivery id
ARGV[3]  lease token
ARGV[4]  outcome: ok | retry | dead
ARGV[5]  next due time (ms), for retry
ARGV[6]  HTTP status ('' when no response)
ARGV[7]  error text ('' on success)
ARGV[8]  dead-letter retention (ms)
ARGV[9]  dead-letter cap (entries)

Returns  1 if recorded (late, on its dead letter, included), 0 if the lease was lost
Errors   SBINVALID (outcome)
]]

--!include lib/base.lua
--!include lib/webhooks.lua

local did, token, outcome = ARGV[2], ARGV[3], ARGV[4]
if outcome ~= 'ok' and outcome ~= 'retry' and outcome ~= 'dead' then
  raise('SBINVALID', 'outcome must be ok, retry or dead')
end
local due = tonumber(ARGV[5])
if outcome == 'retry' and not due then raise('SBINVALID', 'retry needs a due time') end
local key = P .. 'wh:d:' .. did
local v = call('HMGET', key, 'lease', 'sub', 'late')
if not v[1] then return 0 end
if v[1] ~= token then
  if token == '' or v[3] ~= token or not call('ZSCORE', K_WH_DEAD, did) then return 0 end
  if outcome == 'ok' then -- delivered after all: no dead letter, nothing to replay
    call('DEL', key)
    call('ZREM', K_WH_DEAD, did)
  else
    call('HSET', key, 'late', '', 'status', ARGV[6], 'error', ARGV[7], 'last', NOW)
  end
  return 1
end
local due_key = P .. 'wh:due:' .. v[2]
if outcome == 'ok' then
  call('DEL', key)
  call('ZREM', due_key, did)
elseif outcome == 'retry' then
  call('HSET', key, 'lease', '', 'status', ARGV[6], 'error', ARGV[7], 'last', NOW)
  call('ZADD', due_key, due, did)
else -- dead
  call('HSET', key, 'lease', '', 'status', ARGV[6], 'error', ARGV[7], 'last', NOW, 'dead', NOW)
  call('ZREM', due_key, did)
  call('ZADD', K_WH_DEAD, NOW, did)
  trim_dead(tonumber(ARGV[8]), tonumber(ARGV[9]))
end
if call('ZCARD', due_key) == 0 then call('SREM', P .. 'wh:active', v[2]) end
return 1
