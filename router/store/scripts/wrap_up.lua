--[[
wrap_up: the agent ends the conversation and starts after-contact work:
  assigned -> wrap_up, when the contact's queue has a wrap-up time.
It changes one contact and routes nothing, so it includes only lib/base.lua;
the engine calls `complete` when this script says so.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  contact id
ARGV[3]  agent id ('' = on behalf of the agent, e.g. a supervisor)
ARGV[4]  disposition code ('' = none)

Returns  { 'wrap_up', due ms }, or { 'complete', '' } when the contact has no
         wrap-up to do (no wrap-up time, or already in wrap-up): nothing was
         changed, and `complete` is the transition to run.
Errors   SBNOCONTACT, SBNOAGENT, SBSTATE (not assigned or in wrap-up), SBWRONGAGENT
Events   contact.wrap_up
]]

--!include lib/base.lua

local c = must_contact(ARGV[2])
local aid, disposition = ARGV[3], ARGV[4]
if c.state ~= 'assigned' and c.state ~= 'wrap_up' then
  raise('SBSTATE', 'contact ' .. c.id .. ' is ' .. c.state .. ', not assigned or in wrap-up')
end
if aid ~= '' and c.agent ~= aid then
  raise('SBWRONGAGENT', 'contact ' .. c.id .. ' is not held by agent ' .. aid)
end
must_agent(c.agent)
local qc = qcfg(c.queue)
local wrap = (qc and qc.wrap[c.channel]) or 0
if c.state == 'wrap_up' or wrap <= 0 then
  return { 'complete', '' }
end

local due = NOW + wrap
call('HSET', P .. 'c:' .. c.id, 'state', 'wrap_up', 'wrapat', NOW, 'disposition', disposition)
call('ZADD', K_TIMERS, due, 'w|' .. c.id)
emit('contact.wrap_up', cfields(c, { 'agent', c.agent, 'pool', c.pool,
  'talk_ms', NOW - tonumber(c.assigned), 'wrap_due', due }))
return { 'wrap_up', due }
