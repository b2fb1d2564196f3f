--[[
agent_status: available | away (with a reason code) | offline.
Leaving 'available' returns the agent's pending offers to their queues at once;
contacts it already accepted stay with it. Becoming available gives it work.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  agent id
ARGV[3]  status
ARGV[4]  reason code ('' = none)

Returns  { status, changed 0|1 }
Errors   SBNOAGENT, SBINVALID (unknown status)
Events   agent.status_changed (only when something changed), contact.reservation_rejected
         for returned offers, contact.reserved for new offers.
]]

--!include lib/core.lua

local a = must_agent(ARGV[2])
local status, reason = ARGV[3], ARGV[4]
if status ~= 'available' and status ~= 'away' and status ~= 'offline' then
  raise('SBINVALID', 'status must be available, away or offline, not ' .. status)
end
call('HSET', P .. 'a:' .. a.id, 'seen', NOW)
if meta().presence > 0 and status ~= 'offline' then
  call('ZADD', K_TIMERS, NOW + meta().presence, 'h|' .. a.id) -- a status call is a heartbeat
end
local changed = set_status(a, status, reason, true)
if changed then
  if status == 'available' then
    route_agent(a)
  else
    release_reservations(a, 'agent_' .. status)
  end
end
return { a.status, changed and 1 or 0 }
