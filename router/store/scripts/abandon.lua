--[[
abandon: the customer left before being answered: queued|reserved -> abandoned.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  contact id
ARGV[3]  reason ('' = customer_left)

Returns  { 'abandoned', wait_ms }
Errors   SBNOCONTACT, SBSTATE (already answered or finished)
Events   contact.abandoned (then contact.reserved if the freed agent gets other work)
]]

--!include lib/core.lua

local c = must_contact(ARGV[2])
local reason = ARGV[3]
if reason == '' then reason = 'customer_left' end
if c.state ~= 'queued' and c.state ~= 'reserved' then
  raise('SBSTATE', 'contact ' .. c.id .. ' is ' .. c.state .. ', not waiting')
end
local a = nil
if c.state == 'reserved' then a = must_agent(c.agent) end

-- a contact held while its queue is closed has not started waiting
local waited = string.sub(c.place, 1, 5) == 'hold:' and 0 or NOW - c.created
if c.state == 'queued' then
  call('ZREM', P .. c.place, c.id)
end
call('HSET', P .. 'c:' .. c.id, 'state', 'abandoned', 'place', '', 'abandoned', NOW)
emit('contact.abandoned', cfields(c, { 'agent', c.agent, 'pool', c.pool, 'reason', reason,
  'wait_ms', waited, 'from_state', c.state }))
c.state = 'abandoned'
finish(c)
if a then
  release(a, c)
  route_agent(a)
end
return { 'abandoned', waited }
