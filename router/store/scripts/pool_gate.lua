--[[
pool_gate: open or close a pool as a whole. Its agents are not touched one by
one: routing skips a closed pool's ready sets. On opening, waiting contacts of
the pool's lanes are matched to ready agents.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  pool id
ARGV[3]  1 = open, 0 = close
ARGV[4]  reason code
ARGV[5]  lanes to dispatch on opening: 'queue:channel,...'
ARGV[6]  max offers to make (the caller repeats while the limit is reached)

Returns  { open 0|1, changed 0|1, offers made }
Errors   SBNOPOOL, SBINVALID (offer limit)
Events   pool.gate_changed, contact.reserved
]]

--!include lib/core.lua

--!include lib/dispatch.lua

local pool, open, reason = ARGV[2], ARGV[3] == '1', ARGV[4]
local limit = tonumber(ARGV[6])
if call('SISMEMBER', P .. 'pools', pool) == 0 then
  raise('SBNOPOOL', 'pool ' .. pool .. ' does not exist')
end
if not limit then raise('SBINVALID', 'max offers must be a number') end
local changed
if open then
  changed = call('SREM', K_CLOSED, pool) == 1
else
  changed = call('SADD', K_CLOSED, pool) == 1
end
PO[pool] = open
if changed then
  emit('pool.gate_changed', { 'pool', pool, 'open', open and 1 or 0, 'reason', reason })
end
local made = 0
if open then made = dispatch_lanes(ARGV[5], limit) end
return { open and 1 or 0, changed and 1 or 0, made }
