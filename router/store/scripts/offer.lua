--[[
offer: reserve one waiting contact for one named agent (a supervisor's push).
  queued -> reserved

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  contact id
ARGV[3]  agent id

Returns  { 'reserved', deadline }
Errors   SBNOCONTACT, SBNOAGENT, SBSTATE (not queued), SBUNAVAILABLE (agent not
         available, or its pool is closed), SBNOTELIGIBLE (agent does not serve the
         contact's queue and channel at its stage), SBNOCAPACITY (agent full on the
         channel, or held by the cross-channel rule, or the agent's vendor holds
         its max_concurrent contacts), SBCLOSED (the contact is held
         in hold:<queue> until its closed queue opens: offering it would bypass the
         queue's hours; the message ends with the opening, ms)
Events   contact.reserved
]]

--!include lib/core.lua

local c = must_contact(ARGV[2])
local a = must_agent(ARGV[3])
if c.state ~= 'queued' then
  raise('SBSTATE', 'contact ' .. c.id .. ' is ' .. c.state .. ', not queued')
end
if string.sub(c.place, 1, 5) == 'hold:' then
  local opens = str(call('ZSCORE', P .. c.place, c.id))
  raise('SBCLOSED', 'contact ' .. c.id .. ' is held until queue ' .. base_queue(c.queue) ..
    ' opens at ' .. opens)
end
if a.status ~= 'available' or not pool_open(a.pool) then
  raise('SBUNAVAILABLE', 'agent ' .. a.id .. ' is ' .. a.status ..
    (pool_open(a.pool) and '' or ' (pool ' .. a.pool .. ' is closed)'))
end
if not pool_has_room(a.pool) then
  local v = pool_vendor(a.pool)
  raise('SBNOCAPACITY', 'vendor ' .. v .. ' of pool ' .. a.pool .. ' holds its max_concurrent (' ..
    vendor_cap(v) .. ') contacts')
end
local lane = call('HGET', P .. 'al:' .. a.id, c.queue .. ':' .. c.channel)
local entry = lane and tonumber(string.match(lane, '^(%d+):'))
if not entry or (c.pref ~= a.id and entry > c.stage) then
  raise('SBNOTELIGIBLE', 'agent ' .. a.id .. ' does not serve ' .. c.queue .. '/' .. c.channel ..
    ' at stage ' .. c.stage)
end
local cap, load = capload(a, c.channel)
if not ready_on(a, c.channel, cap, load) then
  raise('SBNOCAPACITY', 'agent ' .. a.id .. ' has no free ' .. c.channel .. ' capacity (' ..
    load .. '/' .. cap .. ')')
end
offer(c, a, why_json('manual', 'offered by a supervisor', a.id, {}))
return { 'reserved', c.deadline }
