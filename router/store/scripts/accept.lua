--[[
accept: the agent takes the offered contact: reserved -> assigned.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  contact id
ARGV[3]  agent id

Returns  { 'assigned', wait_ms }
Errors   SBNOCONTACT, SBNOAGENT, SBSTATE (not reserved), SBWRONGAGENT (offered to someone else),
         SBEXPIRED (deadline passed; the timer will requeue it)
Events   contact.assigned, with the provider's id of the contact (a CallSid, a
         Message-ID) as external_id when it has one: the platform connects the call
Timers   v|<vendor> when an answer lets contacts that skipped the vendor go to it again
]]

--!include lib/base.lua

local c = must_offer(ARGV[2], ARGV[3])
local aid = ARGV[3]
if tonumber(c.deadline) <= NOW then
  raise('SBEXPIRED', 'the offer of contact ' .. c.id .. ' expired')
end
must_agent(aid)

-- answered: no more offer deadline, no more overflow, and the answer SLA is met
call('ZREM', K_TIMERS, 'o|' .. c.id, 's|' .. c.id, 'aw|' .. c.id, 'ab|' .. c.id)
call('HSET', P .. 'c:' .. c.id, 'state', 'assigned', 'assigned', NOW)
call('HSET', P .. 'a:' .. aid, 'misses', 0)
-- A vendor that answers is not failing: its run of timeouts starts over, and
-- the contacts that skipped it after a timeout may go to it again (so they stay
-- few: at most its fail_after_timeouts plus the offers then out).
if c.vend ~= '' then
  call('HDEL', P .. 'vfail', c.vend)
  clear_vendor_declines(c.vend)
end
local fields = { 'agent', aid, 'pool', c.pool, 'wait_ms', NOW - c.created,
  'ring_ms', NOW - tonumber(c.offered) }
local data = call('HGET', P .. 'c:' .. c.id, 'data')
if data then
  local ok, record = pcall(cmsgpack.unpack, data)
  if ok and type(record) == 'table' and type(record.external_id) == 'string' then
    fields[#fields + 1] = 'external_id'
    fields[#fields + 1] = record.external_id
  end
end
emit('contact.assigned', cfields(c, fields))
return { 'assigned', NOW - c.created }
