--[[
contact_message: a follow-up from the customer on an existing conversation
(a chat message, an email reply, an SMS, a call status). It is added to the
contact's timeline. A message on a contact completed less than the reopen
window ago reopens it: back to its last agent through the preferred-agent stage
if that agent is available, else to its queue.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  contact id
ARGV[3]  kind: message | ended | answered | status | ignored
ARGV[4]  timeline entry: a short JSON object written by the engine (kind, text, ids)
ARGV[5]  reopen window (ms); 0 = never reopen
ARGV[6]  timeline length kept (>= 1)
ARGV[7]  SLA clocks a reopen starts, or '' (see start_sla in lib/core.lua): the
         engine computes them from the contact's queue, channel and arrival
         priority (field prio0 when an escalation raised it, else prio); a reopen
         restores that priority

Returns  { outcome, state }: outcome 'added' (the contact is open: entry added),
         'reopened' (state is now queued or reserved) or 'closed' (finished and not
         reopened: nothing written; the caller starts a new contact)
Errors   SBNOCONTACT, SBINVALID
Events   contact.message { kind, entry }; contact.reopened { agent (the last one),
         closed_ms } then contact.reserved if an agent is ready.
]]

--!include lib/core.lua

local kind, entry = ARGV[3], ARGV[4]
local window, keep = tonumber(ARGV[5]), tonumber(ARGV[6])
if not window or not keep or keep < 1 then
  raise('SBINVALID', 'reopen window and timeline length must be numbers')
end
local c = must_contact(ARGV[2])
local ckey = P .. 'c:' .. c.id
local finished = c.state == 'completed' or c.state == 'abandoned'
if finished then
  local closed = num(call('HGET', ckey, 'completed'), nil)
  if kind ~= 'message' or c.state ~= 'completed' or window <= 0 or not closed
    or NOW - closed > window then
    return { 'closed', c.state }
  end
end

local function add_entry()
  local tl = P .. 'tl:' .. c.id
  call('LPUSH', tl, entry)
  call('LTRIM', tl, 0, keep - 1)
  call('HINCRBY', ckey, 'msgs', 1)
  call('HSET', ckey, 'last_msg', NOW)
  emit('contact.message', cfields(c, { 'kind', kind, 'entry', entry }))
end

if not finished then
  add_entry()
  return { 'added', c.state }
end

-- reopen a recently completed conversation
local last = c.agent
local closed = num(call('HGET', ckey, 'completed'), NOW)
call('PERSIST', ckey)
call('PERSIST', P .. 'tl:' .. c.id)
for k in string.gmatch(str(call('HGET', ckey, 'threads')), '[^,]+') do
  call('PERSIST', P .. k)
end
call('HDEL', ckey, 'assigned', 'wrapat', 'completed', 'disposition', 'offered', 'deadline',
  'responded', 'resp_agent', 'sl:a', 'sl:f', 'sl:r', 'arrived')
c.stage = 0
c.qentered = NOW
c.created = NOW -- the new message starts a new wait (and SLA clock)
-- with the priority it arrived with: an escalation's raise ended with the last wait
local prio0 = num(call('HGET', ckey, 'prio0'), nil)
if prio0 then
  c.prio = prio0
  call('HDEL', ckey, 'prio0')
end
c.arrived = 0 -- a new wait: no longer held, arrived now
c.score = queue_score(c, c.prio, qcfg(c.queue).aging)
call('HSET', ckey, 'stage', 0, 'qentered', NOW, 'created', NOW, 'score', c.score, 'prio', c.prio)
add_entry()
emit('contact.reopened', cfields(c, { 'agent', last, 'closed_ms', NOW - closed }))
local la = last ~= '' and load_agent(last) or nil
if la and la.status == 'available' and meta().prefms > 0 then
  place_for_agent(c, la.id, NOW + meta().prefms)
else
  place_in_queue(c)
end
schedule_stage(c)
-- a new wait: a new answer or first-response clock (and resolution clock)
if (ARGV[7] or '') ~= '' then start_sla(c, ARGV[7]) end
route_contact(c)
return { 'reopened', c.state }
