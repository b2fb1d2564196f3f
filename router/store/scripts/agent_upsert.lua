--[[
agent_upsert: register an agent, or change its pool, skills or capacity.
Its lanes (queue:channel -> entry stage and proficiency rank) are computed by
the engine from the config and the agent's skills, once per change.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  agent id
ARGV[3]  pool id
ARGV[4]  capacities: 'voice=1,chat=3'
ARGV[5]  lanes: 'queue:channel=entry:rank,...'
ARGV[6]  data: msgpack record (name, skills)
ARGV[7]  status for a new agent: available|away|offline
ARGV[8]  number of sub-queues the engine computed lanes for
ARGV[9]  expected record version ('' = any): a re-lane from a snapshot must not
         overwrite a concurrent change

Returns  { 'created' | 'updated', status }, or { 'retry', '' } when a sub-queue
         was created meanwhile (its lanes are missing), or { 'stale', '' } when
         the record changed since ARGV[9]: nothing was changed.
Errors   SBNOPOOL (pool not in config), SBINVALID (status, lanes, numbers), SBSTATE (a
         move to a pool of another vendor while the agent holds contacts)
Events   agent.capacity_changed (on creation and on every update), agent.status_changed
         for a new agent, contact.reservation_rejected (reason capacity_reduced) for
         pending offers beyond a reduced capacity; then contact.reserved for work it
         is given.
]]

--!include lib/core.lua

local aid, pool, caps, lanes, status = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[7]
if call('SISMEMBER', P .. 'pools', pool) == 0 then
  raise('SBNOPOOL', 'pool ' .. pool .. ' does not exist')
end
if status ~= 'available' and status ~= 'away' and status ~= 'offline' then
  raise('SBINVALID', 'status must be available, away or offline, not ' .. status)
end
for lane, v in string.gmatch(lanes, '([^,=]+)=([^,]+)') do
  if not string.match(v, '^%d+:%d+$') or not string.match(lane, '^.+:[^:]+$') then
    raise('SBINVALID', 'lane ' .. lane .. '=' .. v .. ' is not queue:channel=entry:rank')
  end
end
if call('HLEN', P .. 'subqueues') ~= tonumber(ARGV[8]) then
  return { 'retry', '' }
end
local akey = P .. 'a:' .. aid
local expect = ARGV[9] or ''
if expect ~= '' and num(call('HGET', akey, 'ver'), 0) ~= tonumber(expect) then
  return { 'stale', '' }
end
local a = load_agent(aid)
local created = a == nil
-- The contacts an agent holds count against the vendor of the pool they were
-- offered in; moving the agent to a pool of another vendor (or between in-house
-- and a vendor) would let the new vendor hold more than its caps say.
if a and pool_vendor(a.pool) ~= pool_vendor(pool) and a.tload > 0 then
  raise('SBSTATE', 'agent ' .. aid .. ' holds ' .. a.tload .. ' contacts in pool ' .. a.pool ..
    '; it can move to pool ' .. pool .. ' (another vendor) once they are finished or transferred')
end

-- writes
if a then
  unsync_agent(a) -- old lanes and old pool
  local old = call('HGETALL', akey)
  for i = 1, #old, 2 do
    if string.sub(old[i], 1, 4) == 'cap:' then call('HSET', akey, old[i], 0) end
  end
else
  call('HSET', akey, 'status', 'offline', 'reason', '', 'idle', NOW, 'tload', 0, 'xload', 0,
    'misses', 0, 'seen', NOW)
  call('SADD', P .. 'agents', aid)
  a = load_agent(aid)
end
a.pool = pool
call('HSET', akey, 'pool', pool, 'data', ARGV[6], 'caps', caps)
call('HINCRBY', akey, 'ver', 1)
for ch, n in string.gmatch(caps, '([^,=]+)=(%d+)') do
  call('HSET', akey, 'cap:' .. ch, tonumber(n))
end
local lkey = P .. 'al:' .. aid
call('DEL', lkey)
for lane, v in string.gmatch(lanes, '([^,=]+)=([^,]+)') do
  call('HSET', lkey, lane, v)
end
forget_lanes(a) -- new lanes and capacities
emit('agent.capacity_changed', { 'agent', aid, 'pool', pool, 'capacity', caps, 'lanes', lanes })
-- Capacity cut below what the agent holds: pending offers on those channels go
-- back to their queues; accepted contacts stay (their customers are being served).
local returned = {}
local held = call('SMEMBERS', P .. 'ac:' .. aid)
for i = 1, #held do
  local c = load_contact(held[i])
  if c and c.state == 'reserved' then
    local cap, load = capload(a, c.channel)
    if load > cap then
      requeue(c, a, 'contact.reservation_rejected', 'capacity_reduced', false)
      returned[#returned + 1] = c
    end
  end
end
if created and status ~= 'offline' then
  set_status(a, status, '', true)
else
  sync_agent(a)
end
for i = 1, #returned do route_contact(returned[i]) end
route_agent(a)
return { created and 'created' or 'updated', a.status }
