--[[
webhook_dead: the dead-letter set wh:dead (score = when the delivery died, ms).

  retry   put a dead letter back in its subscription's due set, due now,
          with its attempts reset (it gets max_attempts again)
  delete  delete a dead letter
  trim    delete dead letters past the retention or beyond the cap

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  op: retry | delete | trim
ARGV[3]  delivery id (retry, delete)
ARGV[4]  dead-letter retention (ms)
ARGV[5]  dead-letter cap (entries)

Returns  1 done, 0 no such dead letter (trim: the number deleted)
Errors   SBINVALID (op)
]]

--!include lib/base.lua
--!include lib/webhooks.lua

local op, did = ARGV[2], ARGV[3]
if op == 'trim' then
  return trim_dead(tonumber(ARGV[4]), tonumber(ARGV[5]))
end
if op ~= 'retry' and op ~= 'delete' then raise('SBINVALID', 'op must be retry, delete or trim') end
if not call('ZSCORE', K_WH_DEAD, did) then return 0 end
local key = P .. 'wh:d:' .. did
call('ZREM', K_WH_DEAD, did)
if op == 'delete' then
  call('DEL', key)
  return 1
end
local sub = call('HGET', key, 'sub')
if not sub then return 0 end
call('HSET', key, 'attempts', 0, 'lease', '', 'late', '', 'dead', '')
call('ZADD', P .. 'wh:due:' .. sub, NOW, did)
call('SADD', P .. 'wh:active', sub)
return 1
