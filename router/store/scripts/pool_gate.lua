--[[
pool_gate: set or clear one closing cause of a pool. The pool is closed while
any cause holds (lib/core.lua gate_pool). Its agents are not touched one by
one: routing skips a closed pool's ready sets. When the pool opens, waiting
contacts of its lanes are matched to ready agents.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  pool id
ARGV[3]  1 = clear the cause, 0 = set it
ARGV[4]  reason code (the event's `reason`)
ARGV[5]  lanes to dispatch on opening: 'queue:channel,...'
ARGV[6]  max offers to make (the caller repeats while the limit is reached)
ARGV[7]  closing cause: admin, paused, hours or failing

Returns  { open 0|1 (after the change), changed 0|1, offers made }
Errors   SBNOPOOL, SBINVALID (offer limit)
Events   pool.gate_changed, contact.reserved
]]

--!include lib/core.lua

--!include lib/dispatch.lua

local pool, clear, reason, cause = ARGV[2], ARGV[3] == '1', ARGV[4], ARGV[7]
local limit = tonumber(ARGV[6])
if call('SISMEMBER', P .. 'pools', pool) == 0 then
  raise('SBNOPOOL', 'pool ' .. pool .. ' does not exist')
end
if not limit then raise('SBINVALID', 'max offers must be a number') end
if cause ~= 'admin' and cause ~= 'paused' and cause ~= 'hours' and cause ~= 'failing' then
  raise('SBINVALID', 'unknown closing cause ' .. tostring(cause))
end
local open, changed = gate_pool(pool, clear, cause, reason)
local made = 0
if open then made = dispatch_lanes(ARGV[5], limit) end
return { open and 1 or 0, changed and 1 or 0, made }
