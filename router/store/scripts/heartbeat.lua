--[[
heartbeat: the agent's desktop is alive. Pushes the presence deadline back.
Not a transition: no event.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  agent id

Returns  { status }
Errors   SBNOAGENT
]]

--!include lib/base.lua

local a = must_agent(ARGV[2])
call('HSET', P .. 'a:' .. a.id, 'seen', NOW)
if meta().presence > 0 and a.status ~= 'offline' then
  call('ZADD', K_TIMERS, NOW + meta().presence, 'h|' .. a.id)
end
return { a.status }
