--[[
survey: the customer's answer to a satisfaction survey, relayed by the platform:
CSAT (1-5) and/or NPS (0-10). Only an answered contact (assigned, in wrap-up or
completed: it has an answering agent) can be surveyed; the survey is credited to
the agent who completed the conversation (`done_agent`, kept through a reopen),
else the agent answering it now, and its pool; and may come any time while the record lives (a
completed record expires after retention.finished_contact_s). One survey per
contact record: a repeat with the same values changes nothing (a relay may
retry); one with other values is refused. It changes one record and routes
nothing, so it includes only lib/base.lua.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  contact id
ARGV[3]  csat, integer 1..5 ('' = not given)
ARGV[4]  nps, integer 0..10 ('' = not given)

Returns  { 1 (recorded now) | 0 (same survey recorded before), surveyed at (ms),
           agent, pool, csat or '', nps or '' }
Errors   SBINVALID (a score out of range, or none given), SBNOCONTACT (unknown or
         expired), SBSTATE (never answered, or surveyed before with other values)
Events   contact.surveyed { agent, pool, csat, nps } when recorded
]]

--!include lib/base.lua

local csat, nps = ARGV[3], ARGV[4]
local function check(name, v, lo, hi)
  if v == '' then return end
  local n = tonumber(v)
  if not n or n ~= math.floor(n) or n < lo or n > hi or not string.match(v, '^%d+$') then
    raise('SBINVALID', name .. ': must be an integer ' .. lo .. '..' .. hi .. ', not ' .. v)
  end
end
check('csat', csat, 1, 5)
check('nps', nps, 0, 10)
if csat == '' and nps == '' then raise('SBINVALID', 'csat: give csat, nps or both') end

local c = must_contact(ARGV[2])
local ckey = P .. 'c:' .. c.id
local v = call('HMGET', ckey, 'surveyed', 'sv_csat', 'sv_nps', 'sv_agent', 'sv_pool')
if v[1] then
  if str(v[2]) == csat and str(v[3]) == nps then
    return { 0, v[1], str(v[4]), str(v[5]), csat, nps }
  end
  raise('SBSTATE', 'contact ' .. c.id .. ' was surveyed already (csat ' .. str(v[2]) ..
    ', nps ' .. str(v[3]) .. '); one survey per contact')
end
-- Credit: the agent who completed the conversation, when one did (a reopened
-- conversation answered again, or waiting again, does not move the credit); else the
-- agent answering it now.
local done = call('HMGET', ckey, 'done_agent', 'done_pool')
local agent, pool = str(done[1]), str(done[2])
if agent == '' then
  if c.assigned == '' or c.agent == '' or c.pool == '' then
    raise('SBSTATE', 'contact ' .. c.id .. ' was not answered by an agent (it is ' ..
      c.state .. '); only an answered contact can be surveyed')
  end
  agent, pool = c.agent, c.pool
end

call('HSET', ckey, 'surveyed', NOW, 'sv_csat', csat, 'sv_nps', nps, 'sv_agent', agent,
  'sv_pool', pool)
emit('contact.surveyed', cfields(c, { 'agent', agent, 'pool', pool, 'csat', csat,
  'nps', nps }))
return { 1, NOW, agent, pool, csat, nps }
