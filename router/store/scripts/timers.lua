--[[
timers: apply due timers, in one bounded batch. Popping a timer and applying
it happen in one script, so a process dying between the two loses nothing,
and any number of processes may run this concurrently.

Timer members of sb:{tenant}:timers (score = due ms):
  o|<contact>  offer deadline: reserved -> queued (contact.reservation_expired)
  s|<contact>  next overflow stage opens (contact.stage_advanced)
  p|<contact>  wait for a named agent is over: back to its queue (contact.stage_advanced)
  w|<contact>  wrap-up time is over: wrap_up -> completed (contact.completed)
  h|<agent>    no heartbeat in time: the agent goes offline (agent.status_changed)
  q|<contact>  its closed queue opens: hold:<queue> -> waiting (contact.released)
  v|<vendor>   the vendor has room under its max_concurrent again: its lanes
               (field lanes:<vendor> of vend) are dispatched (contact.reserved)
  u|<queue>:<channel>  the last agent of a pool left the lane's staffing: a
               `when_unstaffed` stage may have opened, the lane is dispatched
               (contact.reserved; lib/core.lua open_stage)
  g|<pool>     the pool's gate closed: the lanes of every queue with a
               `when_unstaffed` stage after the pool's first stage are dispatched
               (contact.reserved). Walks the tenant's queues (queues, subqueues)
  vp|<vendor>  a new hour or day after the vendor reached max_per_hour or
               max_per_day: its lanes are dispatched the same way
  vr|<vendor>  the pause of a failing vendor is over: its pools' `failing`
               cause is cleared (pool.gate_changed) and `v|` is set
  aw|<contact> answer SLA warning   (sla.warning)   - while not answered (queued, reserved)
  ab|<contact> answer SLA breach    (sla.breached)
  fw|<contact> first-response SLA warning (sla.warning)  - while no response was recorded
  fb|<contact> first-response SLA breach  (sla.breached)    and the contact is not finished
  rw|<contact> resolution SLA warning (sla.warning)  - while not completed or abandoned
  rb|<contact> resolution SLA breach  (sla.breached)
A timer whose condition no longer holds (the contact moved on) is dropped.
Each member of the batch is checked again just before it is applied (still in
the set, still due): applying an earlier member may have rescheduled it.
An SLA warning or breach then applies the queue's escalation actions for that
clock and level (field `esc` of q:<queue>, written by routing_config.py):
raise_priority, next_stage, move_queue, notify; each applied one emits
contact.escalated. The contact's current queue decides.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  batch size

Returns  { timers applied, due time of the next timer or '' }
Errors   SBINVALID (batch size)
]]

--!include lib/core.lua

--!include lib/dispatch.lua

local batch = tonumber(ARGV[2])
if not batch or batch < 1 then raise('SBINVALID', 'batch size must be a positive number') end
local due = call('ZRANGEBYSCORE', K_TIMERS, '-inf', NOW, 'LIMIT', 0, batch)

local function expire_offer(c)
  if c.state ~= 'reserved' or num(c.deadline, NOW + 1) > NOW then return end
  local a = load_agent(c.agent)
  if not a then return end
  -- the vendor the offer was charged to (a reload may have moved the pool since)
  if c.vend ~= '' then vendor_timed_out(c, c.vend) end
  requeue(c, a, 'contact.reservation_expired', 'timeout', true)
  route_contact(c)
  route_agent(a)
end

local function agent_wait_over(c)
  if c.state ~= 'queued' or string.sub(c.place, 1, 3) ~= 'aw:' then return end
  local from_agent = c.pref
  call('ZREM', P .. c.place, c.id)
  call('HSET', P .. 'c:' .. c.id, 'pref', '')
  c.pref = ''
  place_in_queue(c)
  emit('contact.stage_advanced', cfields(c, { 'from_stage', c.stage, 'reason', 'agent_wait_over',
    'from_agent', from_agent }))
  route_contact(c)
end

local function wrap_over(c)
  if c.state ~= 'wrap_up' then return end
  local a = load_agent(c.agent)
  complete_now(c, a, str(call('HGET', P .. 'c:' .. c.id, 'disposition')))
end

local function presence_lost(aid)
  local a = load_agent(aid)
  if not a or a.status == 'offline' then return end
  local seen = num(call('HGET', P .. 'a:' .. aid, 'seen'), 0)
  local timeout = meta().presence
  if timeout <= 0 or seen + timeout > NOW then return end
  set_status(a, 'offline', 'presence_timeout')
  release_reservations(a, 'agent_offline')
end

-- held while its queue was closed: the queue opened
local function release_held(c)
  if c.state ~= 'queued' or string.sub(c.place, 1, 5) ~= 'hold:' then return end
  call('ZREM', P .. c.place, c.id)
  c.qentered = NOW
  call('HSET', P .. 'c:' .. c.id, 'qentered', NOW)
  local arrived = c.created
  place_in_queue(c) -- its wait starts now: created = now, arrived = the arrival
  emit('contact.released', cfields(c, { 'reason', 'queue_opened', 'held_ms', NOW - arrived,
    'arrived', arrived }))
  schedule_stage(c)
  route_contact(c)
end

-- escalation --------------------------------------------------------------

local SLA_NAMES = { a = 'answer', f = 'first_response', r = 'resolution' }

local function escalated(c, action, kind, level, to, webhook)
  emit('contact.escalated', cfields(c, { 'action', action, 'sla', kind, 'level', level,
    'to', to, 'webhook', webhook }))
end

local function raise_priority(c, by, kind, level)
  local qc = qcfg(c.queue)
  local prio = math.min(1000, c.prio + by)
  if prio == c.prio then return end
  local ckey = P .. 'c:' .. c.id
  -- the priority it arrived with decides its SLA targets (a reopen's too)
  call('HSETNX', ckey, 'prio0', c.prio)
  c.prio = prio
  c.score = queue_score(c, prio, qc and qc.aging or 0)
  call('HSET', ckey, 'prio', prio, 'score', c.score)
  local pl = c.place
  if c.state == 'queued' and (string.sub(pl, 1, 2) == 'w:' or string.sub(pl, 1, 3) == 'aw:') then
    call('ZADD', P .. pl, c.score, c.id)
  end
  -- after the change: the event's priority is the new one
  escalated(c, 'raise_priority', kind, level, prio, '')
end

-- like a transfer to a queue: the contact keeps its arrival time and priority
local function move_queue(c, target, kind, level)
  if c.state ~= 'queued' and c.state ~= 'reserved' and c.state ~= 'assigned' then return end
  if base_queue(c.queue) == target then return end
  local rq = routing_queue_for(c, target)
  local qc = rq and qcfg(rq)
  if not qc or qc.moved or not queue_has_channel(qc, c.channel) then return end
  if qc.max > 0 and queue_size(qc) >= qc.max then return end
  local holder = nil
  if c.state ~= 'queued' then
    holder = load_agent(c.agent)
    if not holder then return end
  end
  escalated(c, 'move_queue', kind, level, target, '')
  local from_queue, from_agent, from_state = c.queue, c.agent, c.state
  detach(c, holder)
  enter_queue(c, qc)
  emit('contact.transferred', cfields(c, { 'from_queue', base_queue(from_queue),
    'from_agent', from_agent, 'from_state', from_state, 'to_agent', '', 'reason', 'escalation',
    'wait_ms', NOW - c.created }))
  route_contact(c)
  if holder then route_agent(holder) end
end

local function escalate(c, kind, level)
  local raw = call('HGET', P .. 'q:' .. c.queue, 'esc')
  if not raw or raw == '' then return end
  for on, sla, action, arg in string.gmatch(raw, '([^,;]+),([^,;]+),([^,;]+),([^,;]*)') do
    if on == level and (sla == kind or (sla == '*' and kind ~= 'resolution')) then
      if c.state == 'completed' or c.state == 'abandoned' then return end
      if action == 'raise_priority' then
        raise_priority(c, tonumber(arg) or 1, kind, level)
      elseif action == 'next_stage' then
        local qc = qcfg(c.queue)
        if (c.state == 'queued' or c.state == 'reserved') and qc and c.stage + 1 < qc.nst then
          escalated(c, 'next_stage', kind, level, c.stage + 1, '')
          advance_stage(c, 'escalation')
        end
      elseif action == 'move_queue' then
        move_queue(c, arg, kind, level)
      elseif action == 'notify' then
        escalated(c, 'notify', kind, level, '', arg)
      end
    end
  end
end

-- an SLA clock's warning (level 'warning') or breach ('breach') is due
local function sla_due(c, k, level)
  local st = c.state
  if st == 'completed' or st == 'abandoned' then return end
  if k == 'a' and st ~= 'queued' and st ~= 'reserved' then return end
  local v = call('HMGET', P .. 'c:' .. c.id, 'sl:' .. k, 'responded')
  if k == 'f' and v[2] then return end
  local dueat, allowed = string.match(str(v[1]), '^(%d+)|(%d+)')
  if not dueat then return end
  local kind = SLA_NAMES[k]
  emit(level == 'warning' and 'sla.warning' or 'sla.breached', cfields(c, { 'sla', kind,
    'due', dueat, 'target_ms', allowed, 'wait_ms', NOW - c.created }))
  escalate(c, kind, level)
end

-- Most offers one `v|` (or `u|`, `g|`) timer makes before it is scheduled again.
local VENDOR_DISPATCH = 64

-- The lanes 'queue:channel,...' of every routing queue (configured queues and
-- sub-queues) where pool `p` comes before a `when_unstaffed` stage: its
-- closing may open that stage. One read per queue of the tenant, on a gate
-- change only.
local function unstaffed_lanes(p)
  local ids = call('SMEMBERS', P .. 'queues')
  local subs = call('HKEYS', P .. 'subqueues')
  for i = 1, #subs do ids[#ids + 1] = subs[i] end
  local out = {}
  for i = 1, #ids do
    local qc = qcfg(ids[i])
    if qc and not qc.moved and qc.any_unst then
      local fs = nil
      for _, pe in ipairs(qc.pools) do
        if pe[1] == p then fs = pe[2] end
      end
      local later = false
      if fs then
        for k = fs + 1, qc.nst - 1 do
          if qc.unst[k] then later = true end
        end
      end
      if later then
        for ch in string.gmatch(qc.chans, '[^,]+') do out[#out + 1] = qc.id .. ':' .. ch end
      end
    end
  end
  return table.concat(out, ',')
end

-- Apply one popped timer member.
local function apply(m)
  local kind, id = string.match(m, '^([^|]+)|(.*)$')
  if kind == 'h' then
    presence_lost(id)
    return
  end
  if kind == 'vr' then
    vendor_recovered(id)
    return
  end
  if kind == 'vp' and vendor_period_rearm(id) then return end -- still at a cap
  if kind == 'v' or kind == 'vp' then
    -- bounded like one timer batch; if that many offers were made, come back
    if dispatch_lanes(vend_field('lanes:' .. id), VENDOR_DISPATCH) >= VENDOR_DISPATCH then
      call('ZADD', K_TIMERS, NOW, m)
    end
    return
  end
  if kind == 'u' or kind == 'g' then
    -- a `when_unstaffed` stage may have opened: bounded like `v|`
    local lanes = kind == 'u' and id or unstaffed_lanes(id)
    if lanes ~= '' and dispatch_lanes(lanes, VENDOR_DISPATCH) >= VENDOR_DISPATCH then
      call('ZADD', K_TIMERS, NOW, m)
    end
    return
  end
  local c = load_contact(id)
  if not c then return end
  if kind == 'o' then
    expire_offer(c)
  elseif kind == 's' then
    advance_stage(c)
  elseif kind == 'p' then
    agent_wait_over(c)
  elseif kind == 'w' then
    wrap_over(c)
  elseif kind == 'q' then
    release_held(c)
  elseif #kind == 2 and SLA_NAMES[string.sub(kind, 1, 1)] then
    sla_due(c, string.sub(kind, 1, 1), string.sub(kind, 2) == 'w' and 'warning' or 'breach')
  end
end

-- A member read above may be stale when its turn comes: applying an earlier one
-- of the same contact (an escalation's next_stage or move_queue re-offering it)
-- can have rescheduled it to a later time, or removed it. Such a member is left
-- alone, so the new timer survives and the old one is not applied.
for i = 1, #due do
  local m = due[i]
  local score = tonumber(call('ZSCORE', K_TIMERS, m))
  if score and score <= NOW then
    call('ZREM', K_TIMERS, m)
    apply(m)
  end
end
local nxt = call('ZRANGE', K_TIMERS, 0, 0, 'WITHSCORES')
return { #due, nxt[2] or '' }
