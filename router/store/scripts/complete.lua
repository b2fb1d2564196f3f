--[[
complete: the agent finishes a contact.
  assigned -> wrap_up      when the queue has a wrap-up time and ARGV[5] = 0
  assigned -> completed    when there is no wrap-up time, or ARGV[5] = 1
  wrap_up  -> completed    "wrap-up done" (the timer does the same when it runs out)
Handle time is talk time plus wrap-up time.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  contact id
ARGV[3]  agent id ('' = on behalf of the agent, e.g. a supervisor)
ARGV[4]  disposition code ('' = none)
ARGV[5]  1 = skip wrap-up, 0 = normal

Returns  { new state }
Errors   SBNOCONTACT, SBSTATE (not assigned or in wrap-up), SBWRONGAGENT
Events   contact.wrap_up or contact.completed (then contact.reserved for the
         agent's next contact, if it is free)
]]

--!include lib/core.lua

local c = must_contact(ARGV[2])
local aid, disposition, skip = ARGV[3], ARGV[4], ARGV[5] == '1'
if c.state ~= 'assigned' and c.state ~= 'wrap_up' then
  raise('SBSTATE', 'contact ' .. c.id .. ' is ' .. c.state .. ', not assigned or in wrap-up')
end
if aid ~= '' and c.agent ~= aid then
  raise('SBWRONGAGENT', 'contact ' .. c.id .. ' is not held by agent ' .. aid)
end
local a = must_agent(c.agent)

if c.state == 'assigned' then
  local qc = qcfg(c.queue)
  local wrap = (qc and qc.wrap[c.channel]) or 0
  if wrap > 0 and not skip then
    call('HSET', P .. 'c:' .. c.id, 'state', 'wrap_up', 'wrapat', NOW, 'disposition', disposition)
    call('ZADD', K_TIMERS, NOW + wrap, 'w|' .. c.id)
    emit('contact.wrap_up', cfields(c, { 'agent', c.agent, 'pool', c.pool,
      'talk_ms', NOW - tonumber(c.assigned), 'wrap_due', NOW + wrap }))
    return { 'wrap_up' }
  end
end
if disposition == '' then disposition = str(call('HGET', P .. 'c:' .. c.id, 'disposition')) end
complete_now(c, a, disposition)
return { 'completed' }
