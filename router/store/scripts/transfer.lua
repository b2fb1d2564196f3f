--[[
transfer: move a contact to another queue, or to one named agent.
  queued|reserved|assigned -> queued (in the target queue, or waiting for the agent)
The contact keeps its arrival time (SLA clock) and priority; its overflow
stages restart in the new queue, and the new queue counts it as offered.
A transfer to an agent who is not ready waits for that agent for the tenant's
transfer wait, then falls back to the queue the contact came from.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  contact id
ARGV[3]  target queue id, or ''
ARGV[4]  target agent id, or ''
ARGV[5]  acting agent id ('' = supervisor or platform; else it must hold the contact)

Returns  { state, agent id offered to or '', queue id }
Errors   SBNOCONTACT, SBSTATE, SBWRONGAGENT, SBNOQUEUE, SBINVALID (channel not served,
         no target), SBQUEUEFULL, SBNOAGENT
Events   contact.transferred, then contact.reserved if an agent is ready.
]]

--!include lib/core.lua

local c = must_contact(ARGV[2])
local tq, ta, actor = ARGV[3], ARGV[4], ARGV[5]
if c.state ~= 'queued' and c.state ~= 'reserved' and c.state ~= 'assigned' then
  raise('SBSTATE', 'contact ' .. c.id .. ' is ' .. c.state .. ' and cannot be transferred')
end
if actor ~= '' and c.agent ~= actor then
  raise('SBWRONGAGENT', 'contact ' .. c.id .. ' is not held by agent ' .. actor)
end
if (tq == '') == (ta == '') then
  raise('SBINVALID', 'a transfer names exactly one target: a queue or an agent')
end
local qc = nil
local target = nil
if tq ~= '' then
  qc = admit_queue(tq, c.channel, c.sig)
else
  target = must_agent(ta)
  if target.id == c.agent then raise('SBINVALID', 'contact ' .. c.id .. ' is already with ' .. ta) end
end
local holder = nil
if c.state == 'reserved' or c.state == 'assigned' then holder = must_agent(c.agent) end

-- writes
local from_queue, from_agent, from_state = c.queue, c.agent, c.state
detach(c, holder)
if qc then
  enter_queue(c, qc)
else
  call('HSET', P .. 'c:' .. c.id, 'assigned', '', 'offered', '')
  place_for_agent(c, target.id, NOW + meta().xferms)
  schedule_stage(c) -- its queue's overflow clock keeps running meanwhile
end
emit('contact.transferred', cfields(c, { 'from_queue', base_queue(from_queue), 'from_agent', from_agent,
  'from_state', from_state, 'to_agent', ta, 'wait_ms', NOW - c.created }))
local aid = route_contact(c)
if holder then route_agent(holder) end
return { c.state, aid or '', base_queue(c.queue) }
