--[[
respond: the agent sent the customer its first reply (email, social, SMS...).
Records the first response once, which meets the first-response SLA: its
timers (fw|, fb|) are dropped. Later calls change nothing and return the
first response's time. It changes one record and routes nothing, so it
includes only lib/base.lua.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  contact id
ARGV[3]  agent id ('' = on behalf of the holding agent, e.g. a platform-wide token)

Returns  { 1 (recorded now) | 0 (recorded before), first response ms, agent id }
Errors   SBNOCONTACT, SBSTATE (not assigned or in wrap-up, and no response yet),
         SBWRONGAGENT (held by another agent)
Events   contact.responded { agent, pool, response_ms } the first time only
]]

--!include lib/base.lua

local c = must_contact(ARGV[2])
local aid = ARGV[3]
local ckey = P .. 'c:' .. c.id
local v = call('HMGET', ckey, 'responded', 'resp_agent')
if v[1] then return { 0, v[1], str(v[2]) } end
if c.state ~= 'assigned' and c.state ~= 'wrap_up' then
  raise('SBSTATE', 'contact ' .. c.id .. ' is ' .. c.state .. ', not assigned or in wrap-up')
end
if aid ~= '' and c.agent ~= aid then
  raise('SBWRONGAGENT', 'contact ' .. c.id .. ' is not held by agent ' .. aid)
end

call('HSET', ckey, 'responded', NOW, 'resp_agent', c.agent)
call('ZREM', K_TIMERS, 'fw|' .. c.id, 'fb|' .. c.id)
emit('contact.responded', cfields(c, { 'agent', c.agent, 'pool', c.pool,
  'response_ms', NOW - c.created }))
return { 1, NOW, c.agent }
