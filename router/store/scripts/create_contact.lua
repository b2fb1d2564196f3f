--[[
create_contact: a new contact arrives -> received -> queued -> (reserved).

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  contact id (new)
ARGV[3]  queue id
ARGV[4]  channel
ARGV[5]  priority (integer, higher is more urgent)
ARGV[6]  data: msgpack record (customer, subject, preview, skills, attributes...)
ARGV[7]  idempotency key digest, or ''
ARGV[8]  idempotency TTL (ms)
ARGV[9]  preferred agent id, or ''
ARGV[10] how long to wait for the preferred agent (ms)
ARGV[11] customer digest, or '' (remembers the customer's last agent)
ARGV[12] skill signature, or '': the contact then waits in sub-queue <queue>~<sig>
         where the engine created one (see engine.ensure_subqueues)
ARGV[13] SLA clocks to start, or '' (queue without timers): "<code>:<warn>:<due>:<allowed>;..."
         computed by the engine (router/sla.py); see start_sla in lib/core.lua
ARGV[14] held until (ms), or '': the queue is closed and holds new contacts
         (when_closed = "wait"); the contact waits in hold:<queue> and a q|<id>
         timer queues it at this time
ARGV[15] the queue the contact asked for, when the engine sent it elsewhere
ARGV[16] the customer's email and phone digests, comma-separated, or '' (the erasure
         index, lib/customers.lua; router/privacy.contact_digests)
ARGV[17] data-residency region, or '': kept in the contact's `region` field, which
         the named-agent paths check (region_allows in lib/core.lua); queues are
         kept right by the sub-queue of ARGV[12], whose signature includes it
         (when_closed = "overflow"), or ''

Returns  { contact id, state, agent id or '', queue id, duplicate 0|1, position,
           estimated wait }
         duplicate = 1: the idempotency key was seen; nothing changed and the
         first contact's id is returned.
         position: 1-based place of a queued contact in its line, '' when not queued.
         estimated wait (ms, integer): position x handle time per slot (qs:<queue>,
         kept by complete_now) / agents staffed on the lane (sa:<queue>:<channel>);
         '' when not queued or when there is no basis (no agent available on the
         lane, no completed contact of the queue and channel yet). See
         docs/architecture.md, "Estimated wait".
Errors   SBNOQUEUE, SBINVALID (channel not served), SBQUEUEFULL, SBDUPLICATE (id taken)
Events   contact.received, contact.queued (held_until set when held), then
         contact.reserved if an agent is ready; else, when the estimated wait
         exceeds a later stage's estimated_wait_s, contact.stage_advanced
         (reason estimated_wait) and maybe contact.reserved.
]]

--!include lib/core.lua
--!include lib/customers.lua

-- Place in line and estimated wait (ms) of a queued contact, or '', ''.
local function wait_estimate(c)
  if c.state ~= 'queued' or c.place == '' or string.sub(c.place, 1, 5) == 'hold:' then
    return '', ''
  end
  local rank = call('ZRANK', P .. c.place, c.id)
  if not rank then return '', '' end
  local pos = rank + 1
  local staffed = 1 -- waiting for one named agent (aw:), which was available
  if string.sub(c.place, 1, 2) == 'w:' then
    staffed = call('SCARD', P .. 'sa:' .. c.queue .. ':' .. c.channel)
  end
  local aht = num(call('HGET', P .. 'qs:' .. base_queue(c.queue), 'aht:' .. c.channel), nil)
  if staffed == 0 or not aht then return pos, '' end
  return pos, math.floor(pos * aht / staffed + 0.5)
end

-- A queue stage with `estimated_wait_s` (field ewait of q:<queue>) opens on
-- arrival for a contact that no agent took at once and whose estimated wait
-- exceeds it: the contact enters the last such stage at once (one
-- contact.stage_advanced, reason estimated_wait), its later stage timers count
-- from its arrival as usual, and it is routed again. Returns the agent or nil.
local function enter_by_estimate(c)
  if c.state ~= 'queued' or string.sub(c.place, 1, 2) ~= 'w:' then return nil end
  local qc = qcfg(c.queue)
  local k = c.stage
  local _, est = wait_estimate(c)
  if est == '' then return nil end
  for j = c.stage + 1, qc.nst - 1 do
    local x = qc.ewait[j] or 0
    if x > 0 and est > x then k = j end
  end
  if k == c.stage then return nil end
  local from = c.stage
  call('ZREM', P .. c.place, c.id)
  c.stage = k
  c.place = 'w:' .. c.queue .. ':' .. c.channel .. ':' .. k
  call('ZADD', P .. c.place, c.score, c.id)
  call('HSET', P .. 'c:' .. c.id, 'stage', k, 'place', c.place)
  emit('contact.stage_advanced', cfields(c, { 'from_stage', from, 'reason', 'estimated_wait',
    'estimated_wait_ms', est }))
  call('ZREM', K_TIMERS, 's|' .. c.id)
  schedule_stage(c)
  return route_contact(c)
end

local cid, q, ch = ARGV[2], ARGV[3], ARGV[4]
local prio = tonumber(ARGV[5])
local idem, idem_ttl = ARGV[7], tonumber(ARGV[8])
local pref, pref_ms, cust, sig = ARGV[9], tonumber(ARGV[10]), ARGV[11], ARGV[12]
local sla_spec, held = ARGV[13] or '', num(ARGV[14], 0)
local requested = ARGV[15] or ''
if requested == '' then requested = q end

-- validate everything before the first write
if not prio or not idem_ttl or not pref_ms then
  raise('SBINVALID', 'priority, idempotency TTL and preferred-agent wait must be numbers')
end
if idem ~= '' then
  local prev = call('GET', P .. 'idem:' .. idem)
  if prev then
    local c = load_contact(prev)
    if c then
      local pos, wait = wait_estimate(c)
      return { prev, c.state, c.agent, base_queue(c.queue), 1, pos, wait }
    end
    return { prev, 'expired', '', '', 1, '', '' }
  end
end
if call('EXISTS', P .. 'c:' .. cid) == 1 then
  raise('SBDUPLICATE', 'contact ' .. cid .. ' already exists')
end
local qc = admit_queue(q, ch, sig)
if pref == '' and cust ~= '' then
  local last = call('GET', P .. 'cl:' .. cust)
  if last and meta().prefms > 0 then
    pref = last
    pref_ms = meta().prefms
  end
end
local pa = nil
if pref ~= '' then
  pa = load_agent(pref)
  -- a preferred agent must exist and serve this queue and channel
  if pa and not call('HGET', P .. 'al:' .. pref, qc.id .. ':' .. ch) then pa = nil end
end

-- writes
if idem ~= '' then call('SET', P .. 'idem:' .. idem, cid, 'PX', idem_ttl) end
local score = NOW - prio * qc.aging -- queue_score (lib/core.lua) of a contact arriving now
call('HSET', P .. 'c:' .. cid, 'state', 'received', 'queue', qc.id, 'channel', ch, 'stage', 0,
  'score', score, 'prio', prio, 'created', NOW, 'qentered', NOW, 'data', ARGV[6], 'cust', cust,
  'sig', sig)
if (ARGV[17] or '') ~= '' then call('HSET', P .. 'c:' .. cid, 'region', ARGV[17]) end
index_customer(cid, cust, ARGV[16] or '') -- what an erasure finds (lib/customers.lua)
local c = load_contact(cid)
emit('contact.received', cfields(c, { 'requested_queue', requested }))
if held > 0 then
  -- the queue is closed: wait for its opening
  c.place = 'hold:' .. c.queue
  call('ZADD', P .. c.place, held, c.id)
  call('HSET', P .. 'c:' .. c.id, 'state', 'queued', 'place', c.place)
  c.state = 'queued'
  call('ZADD', K_TIMERS, held, 'q|' .. c.id)
  emit('contact.queued', cfields(c, { 'preferred_agent', '', 'held_until', held }))
else
  -- the preferred agent is worth waiting for only while it is signed in and available
  if pa and pref_ms > 0 and pa.status == 'available' then
    place_for_agent(c, pa.id, NOW + pref_ms)
  else
    place_in_queue(c)
  end
  emit('contact.queued', cfields(c, { 'preferred_agent', c.pref }))
  schedule_stage(c)
end
if sla_spec ~= '' then start_sla(c, sla_spec) end
local aid = route_contact(c) or enter_by_estimate(c)
local pos, wait = wait_estimate(c)
return { cid, c.state, aid or '', base_queue(c.queue), 0, pos, wait }
