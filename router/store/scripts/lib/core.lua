--[[
lib/core.lua: the routing core shared by every transition script.

Included (textually, by router/store/scripts.py) by each script that says
`--!include lib/core.lua`. It includes lib/base.lua, which reads:
  KEYS[1]  sb:{tenant}:meta   the tenant anchor; every other key is built from its prefix
  ARGV[1]  now, in ms, from the engine's Clock (scripts never call TIME)

Rules every function here keeps:
  * validation happens in the calling script before its first write; functions
    below that write assume their preconditions hold;
  * every state change of a contact or agent appends exactly one event (emit);
  * a waiting contact is in exactly one sorted set (its `place`), a reserved,
    assigned or wrapping contact is in exactly one agent's `ac:` set;
  * cost per decision is O(log n) times stages x pools, or lanes of one agent.

Key names mirror router/keys.py; see docs/architecture.md.
]]

--!include lib/base.lua

-- Capacity and load of an agent on one channel, read once per script run and
-- kept current by charge and release.
local function capload(a, ch)
  if not a.cl then a.cl = {} end
  local x = a.cl[ch]
  if not x then
    local v = call('HMGET', P .. 'a:' .. a.id, 'cap:' .. ch, 'load:' .. ch)
    x = { num(v[1], 0), num(v[2], 0) }
    a.cl[ch] = x
  end
  return x[1], x[2]
end

-- The agent's lanes, parsed once per script run. Whoever rewrites `al:` or
-- the capacities (agent_upsert, lanes_add) calls forget_lanes.
local function agent_lanes(a)
  if not a.lanes then
    local raw = call('HGETALL', P .. 'al:' .. a.id)
    local lanes = {}
    for i = 1, #raw, 2 do
      local q, ch = string.match(raw[i], '^(.+):([^:]+)$')
      local e, rank = string.match(raw[i + 1], '^(%d+):(%d+)$')
      lanes[#lanes + 1] = { lane = raw[i], q = q, ch = ch, e = tonumber(e), rank = tonumber(rank) }
    end
    a.lanes = lanes
  end
  return a.lanes
end

local function forget_lanes(a)
  a.lanes = nil
  a.cl = nil
  a.restaff = true
end

-- Whether the agent may take one more contact on `ch` (status, capacity and
-- the cross-channel rule: an exclusive channel is handled alone).
local function ready_on(a, ch, cap, load)
  if a.status ~= 'available' or load >= cap then return false end
  if is_excl(ch) then return a.tload == load end
  return a.xload == 0
end

local function agent_score(a, strat, rank, cap, load)
  if strat == 'lo' then
    return math.floor(100 * load / cap) * 1e13 + a.idle
  elseif strat == 'hp' then
    return (99 - rank) * 1e13 + a.idle
  end
  return a.idle
end

-- Staffing of a lane: sa:<q>:<ch> holds the agents signed in as available with
-- that lane, busy or not (the wait estimate of create_contact counts them). It
-- changes only with the status or the lanes (set_status and forget_lanes set
-- a.restaff), so charging and releasing an agent cost no extra command.
local restaff_pool -- defined below, with open_stage
local function restaff(a, lanes)
  local on = a.status == 'available'
  for i = 1, #lanes do
    if call(on and 'SADD' or 'SREM', P .. 'sa:' .. lanes[i].lane, a.id) == 1 then
      restaff_pool(lanes[i].lane, a.pool, on and 1 or -1)
    end
  end
  a.restaff = nil
end

-- Put the agent in, or take it out of, the ready set of each of its lanes.
local function sync_agent(a)
  local lanes = agent_lanes(a)
  if a.restaff then restaff(a, lanes) end
  for i = 1, #lanes do
    local l = lanes[i]
    local key = P .. 'r:' .. l.lane .. ':' .. l.e .. ':' .. a.pool
    local cap, load = capload(a, l.ch)
    if ready_on(a, l.ch, cap, load) then
      local qc = qcfg(l.q)
      call('ZADD', key, agent_score(a, qc and qc.strat or 'li', l.rank, cap, load), a.id)
    else
      call('ZREM', key, a.id)
    end
  end
end

-- Take the agent out of its lanes' ready and staffing sets (before they change).
local function unsync_agent(a)
  local lanes = agent_lanes(a)
  for i = 1, #lanes do
    call('ZREM', P .. 'r:' .. lanes[i].lane .. ':' .. lanes[i].e .. ':' .. a.pool, a.id)
    if call('SREM', P .. 'sa:' .. lanes[i].lane, a.id) == 1 then
      restaff_pool(lanes[i].lane, a.pool, -1)
    end
  end
end

-- pool gates ---------------------------------------------------------------
-- A pool is closed while it has at least one closing cause in pc:<pool>: an
-- admin (`admin`), a vendor pause (`paused`), the vendor's hours (`hours`), a
-- vendor whose offers time out (`failing`). Each cause is set and cleared on
-- its own, so a resume does not open a pool that is outside its hours.
-- K_CLOSED holds the pools with any cause; routing reads only that.
-- Returns whether the pool is open now and whether that changed.
local function gate_pool(p, open, cause, reason)
  local ckey = P .. 'pc:' .. p
  call(open and 'SREM' or 'SADD', ckey, cause)
  local now_open = call('SCARD', ckey) == 0
  local changed = call(now_open and 'SREM' or 'SADD', K_CLOSED, p) == 1
  PO[p] = now_open
  if changed then
    emit('pool.gate_changed', { 'pool', p, 'open', now_open and 1 or 0, 'reason', reason,
      'cause', cause })
    -- a closing may open `when_unstaffed` stages of its queues: the `g|` timer
    -- offers their waiting contacts to those stages' ready agents (timers.lua)
    if not now_open then call('ZADD', K_TIMERS, NOW, 'g|' .. p) end
  end
  return now_open, changed
end

-- overflow triggers ----------------------------------------------------------
-- A stage with `when_unstaffed` (field unst of q:<queue>) opens at once, for
-- every waiting contact of a lane, while each pool of the earlier stages is
-- closed or has no agent signed in as available on the lane. sp:<queue>:<ch>
-- counts, per pool, the agents of sa:<queue>:<ch> (kept by restaff and
-- unsync_agent, only when SADD/SREM changed membership), so the test costs one
-- HGET per open pool of the earlier stages. The contact keeps its stage:
-- routing widens (find_agent, find_contact), and narrows again as soon as
-- the earlier pools are back.

-- One agent of `pool` joined (+1) or left (-1) the staffing of `lane`. The
-- last one leaving may open a `when_unstaffed` stage: the `u|<lane>` timer
-- dispatches the lane (timers.lua).
restaff_pool = function(lane, pool, delta)
  local key = P .. 'sp:' .. lane
  if call('HINCRBY', key, pool, delta) > 0 then return end
  call('HDEL', key, pool)
  local qc = qcfg(string.match(lane, '^(.+):[^:]+$'))
  if qc and qc.any_unst then call('ZADD', K_TIMERS, NOW, 'u|' .. lane) end
end

-- The stage a contact at `stage` of `lane` is routed at: its own, or the last
-- `when_unstaffed` stage whose earlier pools are all closed or unstaffed.
local function open_stage(qc, lane, stage)
  if not qc.any_unst then return stage end
  local best = stage
  for j = 1, qc.nst - 1 do
    for _, pe in ipairs(qc.pools) do
      if pe[2] == j - 1 and pool_open(pe[1])
        and num(call('HGET', P .. 'sp:' .. lane, pe[1]), 0) > 0 then
        return best
      end
    end
    if qc.unst[j] and j > best then best = j end
  end
  return best
end

-- The first stage whose waiting set an agent entering `lane` at stage `e` may
-- read: 0 while a `when_unstaffed` stage at or before `e` is open, else `e`.
local function read_from(qc, lane, e)
  if e > 0 and qc.any_unst and open_stage(qc, lane, 0) >= e then return 0 end
  return e
end

-- vendor caps --------------------------------------------------------------
-- A vendor's max_concurrent binds all its pools at once. vload:<vendor> counts
-- the contacts its agents hold (reserved, assigned, wrap-up): charge adds one
-- and records the vendor in the contact's `vend` field, release takes it off
-- through that field, so a reload that moves a pool cannot skew the count.
-- `vend` (written by Engine.apply_config) maps pools to vendors and holds the
-- caps and the vendors' lanes.
local VEND, VLOAD = {}, {}
local function vend_field(f)
  local v = VEND[f]
  if v == nil then
    v = str(call('HGET', P .. 'vend', f))
    VEND[f] = v
  end
  return v
end

local function pool_vendor(p)
  return vend_field('pool:' .. p)
end

local function vendor_cap(v)
  return num(vend_field('cap:' .. v), 0)
end

local function vendor_load(v)
  local n = VLOAD[v]
  if n == nil then
    n = num(call('HGET', P .. 'vload', v), 0)
    VLOAD[v] = n
  end
  return n
end

-- The vendor's clock hour and day: whole hours and days since the epoch in its
-- time zone, from the UTC offset in force (`off:<vendor>`, kept current by the
-- engine, router/vendor_state.py). vh:<vendor>:<hour> and vd:<vendor>:<day>
-- count the contacts offered to its agents in that hour and day and not handed
-- back (a reject, a timeout or an agent leaving hands one back).
local HOUR_MS, DAY_MS = 3600000, 86400000
local function vendor_periods(v)
  local local_now = NOW + num(vend_field('off:' .. v), 0)
  return math.floor(local_now / HOUR_MS), math.floor(local_now / DAY_MS)
end

local PERIOD_COUNT = {}
local function period_count(key)
  local n = PERIOD_COUNT[key]
  if n == nil then
    n = num(call('GET', key), 0)
    PERIOD_COUNT[key] = n
  end
  return n
end

-- Whether the vendor is under its max_per_hour and max_per_day now.
local function vendor_period_room(v)
  local hcap, dcap = num(vend_field('hcap:' .. v), 0), num(vend_field('dcap:' .. v), 0)
  if hcap == 0 and dcap == 0 then return true end
  local hour, day = vendor_periods(v)
  if hcap > 0 and period_count(P .. 'vh:' .. v .. ':' .. hour) >= hcap then return false end
  if dcap > 0 and period_count(P .. 'vd:' .. v .. ':' .. day) >= dcap then return false end
  return true
end

-- After a `vp|` timer: while the vendor is still at a period cap (both caps
-- were reached at once, a DST hour repeats, a reload lowered a cap), set the
-- timer again for the end of the binding period. Returns true if it did.
local function vendor_period_rearm(v)
  local hcap, dcap = num(vend_field('hcap:' .. v), 0), num(vend_field('dcap:' .. v), 0)
  local hour, day = vendor_periods(v)
  local off = num(vend_field('off:' .. v), 0)
  local at
  if dcap > 0 and period_count(P .. 'vd:' .. v .. ':' .. day) >= dcap then
    at = (day + 1) * DAY_MS - off
  elseif hcap > 0 and period_count(P .. 'vh:' .. v .. ':' .. hour) >= hcap then
    at = (hour + 1) * HOUR_MS - off
  end
  if not at then return false end
  call('ZADD', K_TIMERS, math.max(at, NOW + 1), 'vp|' .. v)
  return true
end

-- Whether pool p may take one more contact under its vendor's caps (a pool
-- without a vendor, or a vendor without caps, always may).
local function pool_has_room(p)
  local v = pool_vendor(p)
  if v == '' then return true end
  local cap = vendor_cap(v)
  if cap > 0 and vendor_load(v) >= cap then return false end
  return vendor_period_room(v)
end

-- data residency: whether pool p may serve a contact tagged `region` ('' = untagged).
-- `rg:<pool>` in vend (router/store/vendor_fields.py) is "*" (every region) or
-- ",eu,us,"; a pool without the field serves no tagged contact. Queues need no
-- check (a tagged contact's sub-queue has lanes for allowed pools only); the
-- named-agent paths (aw:) do.
local function region_allows(p, region)
  if region == nil or region == '' then return true end
  local rg = vend_field('rg:' .. p)
  return rg == '*' or string.find(rg, ',' .. region .. ',', 1, true) ~= nil
end

-- A pool's place in the order of pools open to a contact: 0 for in-house
-- pools and vendors without a rank, else the vendor's rank (1 = first), set by
-- the engine from commitments and prices (router/vendor_state.py).
local function pool_rank(p)
  return num(vend_field('rank:' .. p), 0)
end

-- Count an offer in the vendor's hour (only when it has max_per_hour) and day
-- (always: the day counts are its volume against its commitment). At a cap,
-- the `vp|` timer is set for the next hour or day, when the vendor has room.
local function count_period(v)
  local hour, day = vendor_periods(v)
  local off = num(vend_field('off:' .. v), 0)
  local hcap, dcap = num(vend_field('hcap:' .. v), 0), num(vend_field('dcap:' .. v), 0)
  local per = tostring(day)
  if hcap > 0 then
    local hkey = P .. 'vh:' .. v .. ':' .. hour
    local n = call('INCR', hkey)
    PERIOD_COUNT[hkey] = n
    if n == 1 then call('PEXPIRE', hkey, 2 * HOUR_MS) end
    if n >= hcap then call('ZADD', K_TIMERS, 'LT', (hour + 1) * HOUR_MS - off, 'vp|' .. v) end
    per = per .. ':' .. hour
  end
  local dkey = P .. 'vd:' .. v .. ':' .. day
  local n = call('INCR', dkey)
  PERIOD_COUNT[dkey] = n
  if n == 1 then call('PEXPIRE', dkey, 40 * DAY_MS) end
  if dcap > 0 and n >= dcap then
    call('ZADD', K_TIMERS, 'LT', (day + 1) * DAY_MS - off, 'vp|' .. v)
  end
  return per
end

-- A contact handed back by the vendor's agent no longer counts in the hour and
-- day it was counted in (`vper` = "<day>[:<hour>]").
local function uncount_period(c)
  local ckey = P .. 'c:' .. c.id
  local v, per = unpack(call('HMGET', ckey, 'vend', 'vper'))
  if not v or not per then return end
  call('HDEL', ckey, 'vper')
  local day, hour = string.match(per, '^(%d+):?(%d*)$')
  if not day then return end
  local n = call('DECR', P .. 'vd:' .. v .. ':' .. day)
  PERIOD_COUNT[P .. 'vd:' .. v .. ':' .. day] = n
  if hour ~= '' then
    local hkey = P .. 'vh:' .. v .. ':' .. hour
    n = call('DECR', hkey)
    PERIOD_COUNT[hkey] = n
  end
end

local function vendor_charge(a, c)
  local v = pool_vendor(a.pool)
  if v == '' then return end
  VLOAD[v] = call('HINCRBY', P .. 'vload', v, 1)
  call('HSET', P .. 'c:' .. c.id, 'vend', v, 'vper', count_period(v))
  c.vend = v
end

local function vendor_release(c)
  local ckey = P .. 'c:' .. c.id
  local v = c.vend
  if v == nil then v = str(call('HGET', ckey, 'vend')) end
  if v == '' then return end
  c.vend = ''
  call('HDEL', ckey, 'vend', 'vper')
  local n = call('HINCRBY', P .. 'vload', v, -1)
  VLOAD[v] = n
  local cap = vendor_cap(v)
  if cap > 0 and n == cap - 1 then
    -- room again after the cap was reached: the `v|` timer offers the vendor's
    -- ready agents what waited meanwhile (timers.lua)
    call('ZADD', K_TIMERS, NOW, 'v|' .. v)
  end
end

-- failing vendors ----------------------------------------------------------
-- A vendor whose agent lets an offer time out is skipped for that contact from
-- then on, if its queue has other pools (field `dv` of the contact:
-- ",<vendor>,...", and the set vdc:<vendor> of such contacts, which a freed
-- agent of the vendor looks past), so a silent vendor costs one contact one
-- offer timeout at most. vfail counts the vendor's
-- timeouts in a row (an accept clears it); at the contract's `fail_after`
-- (field `fail:<vendor>` = "<timeouts>:<pause ms>") its pools close with cause
-- `failing` until the `vr|` timer reopens them after the pause.
local function vendor_declined(c, v)
  return c.dv ~= '' and string.find(c.dv, ',' .. v .. ',', 1, true) ~= nil
end

local function vendor_pools(v)
  local out = {}
  for p in string.gmatch(vend_field('pools:' .. v), '[^,]+') do out[#out + 1] = p end
  return out
end

-- Whether c's queue has a pool (at any stage) not run by vendor v nor by a
-- vendor c already skips: only then does skipping v lead anywhere. A contact
-- whose queue has no such pool keeps waiting for v.
local function elsewhere_than(c, v)
  local qc = qcfg(c.queue)
  if not qc then return false end
  local region = str(call('HGET', P .. 'c:' .. c.id, 'region'))
  local lane = ',' .. c.queue .. ':' .. c.channel .. ','
  for _, pe in ipairs(qc.pools) do
    local p = pe[1]
    local pv = pool_vendor(p)
    -- a pool counts only if it may serve this contact: its region, and for a
    -- vendor's pool its contract (the lane is among the vendor's lanes)
    if region_allows(p, region) then
      if pv == '' then return true end
      if pv ~= v and not vendor_declined(c, pv)
        and string.find(',' .. vend_field('lanes:' .. pv) .. ',', lane, 1, true) then
        return true
      end
    end
  end
  return false
end

-- The offer of c to an agent of vendor v timed out (before c is requeued).
local function vendor_timed_out(c, v)
  local after, pause = string.match(vend_field('fail:' .. v), '^(%d+):(%d+)$')
  after = tonumber(after) or 0
  if after == 0 then return end -- fail_after_timeouts = 0: never treated as failing
  if not vendor_declined(c, v) and elsewhere_than(c, v) then
    c.dv = (c.dv == '' and ',' or c.dv) .. v .. ','
    call('HSET', P .. 'c:' .. c.id, 'dv', c.dv)
    call('SADD', P .. 'vdc:' .. v, c.id)
  end
  if call('HINCRBY', P .. 'vfail', v, 1) < after then return end
  call('HDEL', P .. 'vfail', v)
  local pools = vendor_pools(v)
  for i = 1, #pools do gate_pool(pools[i], false, 'failing', 'vendor_failing') end
  call('ZADD', K_TIMERS, NOW + tonumber(pause), 'vr|' .. v)
end

-- The failing pause of vendor v is over: its pools reopen (unless another cause
-- holds them) and what waited on its lanes is offered (`v|`).
local function vendor_recovered(v)
  clear_vendor_declines(v) -- a fresh start: what it timed out on may go to it again
  local any = false
  local pools = vendor_pools(v)
  for i = 1, #pools do
    if gate_pool(pools[i], true, 'failing', 'vendor_recovered') then any = true end
  end
  if any then call('ZADD', K_TIMERS, NOW, 'v|' .. v) end
end

-- Forget the contact's vendor declines (it finished, or moves to a new queue).
local function forget_vendor_declines(c)
  if c.dv == '' then return end
  for v in string.gmatch(c.dv, '[^,]+') do call('SREM', P .. 'vdc:' .. v, c.id) end
  call('HDEL', P .. 'c:' .. c.id, 'dv')
  c.dv = ''
end

local function charge(a, c)
  local akey = P .. 'a:' .. a.id
  local load = call('HINCRBY', akey, 'load:' .. c.channel, 1)
  if a.cl and a.cl[c.channel] then a.cl[c.channel][2] = load end
  a.tload = a.tload + 1
  if is_excl(c.channel) then a.xload = a.xload + 1 end
  a.idle = NOW
  call('HSET', akey, 'tload', a.tload, 'xload', a.xload, 'idle', NOW)
  call('SADD', P .. 'ac:' .. a.id, c.id)
  vendor_charge(a, c)
  sync_agent(a)
end

local function release(a, c)
  local akey = P .. 'a:' .. a.id
  if call('SREM', P .. 'ac:' .. a.id, c.id) == 0 then return end
  vendor_release(c)
  local load = call('HINCRBY', akey, 'load:' .. c.channel, -1)
  if a.cl and a.cl[c.channel] then a.cl[c.channel][2] = load end
  a.tload = a.tload - 1
  if is_excl(c.channel) then a.xload = a.xload - 1 end
  if a.tload == 0 then a.idle = NOW end
  call('HSET', akey, 'tload', a.tload, 'xload', a.xload, 'idle', a.idle)
  sync_agent(a)
end

local function set_status(a, status, reason, from_agent)
  if a.status == status and a.reason == reason then return false end
  local prev = a.status
  a.status = status
  a.reason = reason
  if (prev == 'available') ~= (status == 'available') then a.restaff = true end
  local fields = { 'status', status, 'reason', reason }
  if status == 'available' then
    a.idle = NOW
    a.misses = 0
    fields[#fields + 1] = 'idle'
    fields[#fields + 1] = NOW
    fields[#fields + 1] = 'misses'
    fields[#fields + 1] = 0
  end
  if from_agent and status ~= 'offline' and meta().presence > 0 then
    -- a status call from the agent's desktop is a heartbeat: without another
    -- one before this deadline the agent goes offline
    fields[#fields + 1] = 'seen'
    fields[#fields + 1] = NOW
    call('ZADD', K_TIMERS, NOW + meta().presence, 'h|' .. a.id)
  end
  call('HSET', P .. 'a:' .. a.id, unpack(fields))
  emit('agent.status_changed', { 'agent', a.id, 'pool', a.pool, 'status', status, 'from', prev,
    'reason', reason })
  sync_agent(a)
  return true
end

-- waiting -----------------------------------------------------------------

local function declined_by(cid, aid)
  return call('SISMEMBER', P .. 'dc:' .. cid, aid) == 1
end

local function schedule_stage(c)
  local qc = qcfg(c.queue)
  local nxt = c.stage + 1
  if nxt < qc.nst then
    call('ZADD', K_TIMERS, c.qentered + qc.after[nxt], 's|' .. c.id)
  end
end

local routing_queue, routing_queue_for -- defined below

-- When a contact arrived: `arrived` for one that was held while its queue was
-- closed (its `created` is then its release), else `created`. Cached on c
-- (0 = never held); unhold and a reopen keep the cache current.
local function arrival(c)
  if c.arrived == nil then c.arrived = num(call('HGET', P .. 'c:' .. c.id, 'arrived'), 0) end
  if c.arrived > 0 then return c.arrived end
  return c.created
end

-- The one place a waiting score is computed (lower is served first): arrival
-- minus priority x aging. Held contacts keep their arrival as the base, so the
-- night they were held still counts for their place in line (contacts released
-- at the same opening stay in arrival order), while their wait_ms and SLA
-- clocks count from the release (`created`).
local function queue_score(c, prio, aging)
  return arrival(c) - prio * aging
end

-- A contact whose queue was removed from the config moves to the queue the
-- removed queue names for its channel (following further removals), stage 0,
-- keeping its arrival time. Returns true when it moved.
local function follow_removed(c)
  local from = c.queue
  local qc = qcfg(c.queue)
  local hops = 0
  while qc and qc.moved and qc.moved[c.channel] and hops < 8 do
    local rq = routing_queue_for(c, qc.moved[c.channel])
    qc = rq and qcfg(rq)
    hops = hops + 1
  end
  if hops == 0 or not qc or qc.moved then return false end
  c.queue = qc.id
  c.stage = 0
  c.qentered = NOW
  c.score = queue_score(c, c.prio, qc.aging)
  call('HSET', P .. 'c:' .. c.id, 'queue', c.queue, 'stage', 0, 'qentered', NOW, 'score', c.score)
  emit('contact.transferred', cfields(c, { 'from_queue', base_queue(from), 'from_state', c.state,
    'reason', 'queue_removed', 'wait_ms', NOW - c.created }))
  schedule_stage(c)
  return true
end

-- Start a contact's SLA clocks. `spec` = "<code>:<warn ms>:<due ms>:<allowed ms>;..."
-- computed by the engine (router/sla.py); code a = answer, f = first response,
-- r = resolution. Timer members <code>w|<id> (warning) and <code>b|<id> (breach);
-- field sl:<code> = "<due>|<allowed>|<warn>" for the events and the contact view.
local function start_sla(c, spec)
  for k, warn, due, allowed in string.gmatch(spec, '(%a):(%d+):(%d+):(%d+)') do
    call('ZADD', K_TIMERS, warn, k .. 'w|' .. c.id, due, k .. 'b|' .. c.id)
    call('HSET', P .. 'c:' .. c.id, 'sl:' .. k, due .. '|' .. allowed .. '|' .. warn)
  end
end

-- A contact held while its queue was closed (place hold:<queue>, already taken
-- out of that set by the caller) starts waiting now, when it joins a queue (the
-- opening, a transfer, an escalation's move_queue): `created`, from which every
-- wait_ms, response_ms and the contact view count, becomes now, and its arrival
-- is kept in `arrived`. The night it was held is not waiting time, but its
-- score keeps counting from the arrival (queue_score).
local function unhold(c)
  if string.sub(c.place, 1, 5) ~= 'hold:' then return end
  call('HSET', P .. 'c:' .. c.id, 'arrived', c.created, 'created', NOW)
  c.arrived = c.created
  c.created = NOW
end

-- Put a contact (state already set by the caller) into its queue's waiting set.
local function place_in_queue(c)
  unhold(c)
  follow_removed(c)
  c.place = 'w:' .. c.queue .. ':' .. c.channel .. ':' .. c.stage
  call('ZADD', P .. c.place, c.score, c.id)
  call('HSET', P .. 'c:' .. c.id, 'state', 'queued', 'place', c.place, 'agent', '', 'pool', '',
    'deadline', '')
  c.state = 'queued'
end

local function place_for_agent(c, aid, until_ms)
  unhold(c)
  c.place = 'aw:' .. aid
  call('ZADD', P .. c.place, c.score, c.id)
  call('HSET', P .. 'c:' .. c.id, 'state', 'queued', 'place', c.place, 'pref', aid,
    'agent', '', 'pool', '', 'deadline', '')
  c.state = 'queued'
  c.pref = aid
  call('ZADD', K_TIMERS, until_ms, 'p|' .. c.id)
end

-- Take a queued, reserved or assigned contact out of where it is before it moves
-- (transfer, escalation move_queue): its set, its timers, its declines, and the
-- load it puts on `holder` (the agent it is reserved or assigned to, or nil).
-- c.place keeps its old value, so place_in_queue still sees a held contact leave.
local function detach(c, holder)
  if c.state == 'queued' and c.place ~= '' then call('ZREM', P .. c.place, c.id) end
  call('ZREM', K_TIMERS, 'o|' .. c.id, 's|' .. c.id, 'p|' .. c.id, 'q|' .. c.id)
  local dkey = P .. 'dc:' .. c.id
  local decl = call('SMEMBERS', dkey)
  for i = 1, #decl do call('SREM', P .. 'ad:' .. decl[i], c.id) end
  call('DEL', dkey)
  forget_vendor_declines(c)
  if holder then release(holder, c) end
end

-- Make `qc` a detached contact's queue, from its first stage, and put it in line.
local function enter_queue(c, qc)
  c.queue = qc.id
  c.stage = 0
  c.qentered = NOW
  c.score = queue_score(c, c.prio, qc.aging)
  c.pref = ''
  call('HSET', P .. 'c:' .. c.id, 'queue', c.queue, 'stage', 0, 'qentered', NOW, 'score', c.score,
    'pref', '', 'assigned', '', 'offered', '')
  place_in_queue(c)
  schedule_stage(c)
end

local function queue_size(qc)
  local n = 0
  for ch in string.gmatch(qc.chans, '[^,]+') do
    for k = 0, qc.nst - 1 do
      n = n + call('ZCARD', P .. 'w:' .. qc.id .. ':' .. ch .. ':' .. k)
    end
  end
  return n
end

-- The routing queue for configured queue `q` and a contact skill signature.
routing_queue = function(q, sig)
  if sig ~= '' and qcfg(q .. '~' .. sig) then return q .. '~' .. sig end
  return q
end

-- The same for a contact moving on its own (escalation, removed queue): a
-- contact with a region tag needs its sub-queue (where only the pools allowed
-- for its region have lanes), never the plain queue. nil when it is missing.
routing_queue_for = function(c, q)
  local rq = routing_queue(q, c.sig)
  if c.sig ~= '' and rq == q and str(call('HGET', P .. 'c:' .. c.id, 'region')) ~= '' then
    return nil
  end
  return rq
end

-- The queue that takes a new contact: `q`, or its overflow chain when full.
local function admit_queue(q, ch, sig)
  local seen = 0
  while true do
    local qc = qcfg(routing_queue(q, sig))
    if not qc then raise('SBNOQUEUE', 'queue ' .. q .. ' does not exist') end
    if qc.moved then raise('SBNOQUEUE', 'queue ' .. q .. ' was removed from the configuration') end
    if not queue_has_channel(qc, ch) then
      raise('SBINVALID', 'queue ' .. q .. ' does not take channel ' .. ch)
    end
    if qc.max == 0 or queue_size(qc) < qc.max then return qc end
    if qc.full ~= 'overflow' or qc.ovq == '' or seen > 8 then
      raise('SBQUEUEFULL', 'queue ' .. q .. ' is full (' .. qc.max .. ' waiting)')
    end
    q = qc.ovq
    seen = seen + 1
  end
end

-- routing -----------------------------------------------------------------

-- Best ready agent for a waiting contact: the heads of r:<q>:<ch>:<e>:<pool>
-- for every open pool and entry stage e <= the contact's stage, or the later
-- `when_unstaffed` stage open for it (open_stage).
local function find_agent(c)
  local qc = qcfg(c.queue)
  if not qc then return nil end
  -- a `when_unstaffed` stage may be open for it already (open_stage)
  local st = open_stage(qc, c.queue .. ':' .. c.channel, c.stage)
  local dkey = P .. 'dc:' .. c.id
  local nd = call('SCARD', dkey)
  if nd > DECLINE_SCAN then nd = DECLINE_SCAN end
  local best, bestscore, bestpool, bestrank
  local seen = {}
  for _, pe in ipairs(qc.pools) do
    local p, fs = pe[1], pe[2]
    if fs <= st then
      local pv = pool_vendor(p)
      if pv ~= '' and vendor_declined(c, pv) then
        -- an offer of this contact to the vendor timed out: it moves on
        seen[#seen + 1] = { pool = p, vendor_timed_out = true }
      elseif pool_open(p) and pool_has_room(p) then
        local rank = pool_rank(p)
        for e = fs, st do
          local items = call('ZRANGE', P .. 'r:' .. c.queue .. ':' .. c.channel .. ':' .. e .. ':' .. p,
            0, nd, 'WITHSCORES')
          for j = 1, #items, 2 do
            local aid = items[j]
            if nd == 0 or not declined_by(c.id, aid) then
              local sc = tonumber(items[j + 1])
              -- rank only for ranked (vendor) pools: nil leaves the key out
              seen[#seen + 1] = { agent = aid, pool = p, entry = e, score = sc,
                rank = rank > 0 and rank or nil }
              -- the pool's rank first (in-house, then vendors by commitment and
              -- cost), then the agent's score within it
              if not best or rank < bestrank or (rank == bestrank and sc < bestscore) then
                best, bestscore, bestpool, bestrank = aid, sc, p, rank
              end
              break
            end
          end
        end
      elseif not pool_open(p) then
        seen[#seen + 1] = { pool = p, closed = true }
      else
        -- its vendor is at a cap (concurrent, hour, day): skipped like a closed pool
        seen[#seen + 1] = { pool = p, at_cap = true }
      end
    end
  end
  return best, seen
end

local STRAT_NAMES = { li = 'longest_idle', lo = 'least_occupied', hp = 'highest_proficiency' }

local function why_json(strategy, reason, chosen, candidates)
  return cjson.encode({ strategy = strategy, reason = reason, chosen = chosen,
    candidates = candidates, at = NOW })
end

-- Reserve a waiting contact for an agent that is ready on its channel.
local function offer(c, a, why)
  local qc = qcfg(c.queue)
  call('ZREM', P .. c.place, c.id)
  call('ZREM', K_TIMERS, 'p|' .. c.id)
  local deadline = NOW + qc.offer
  call('HSET', P .. 'c:' .. c.id, 'state', 'reserved', 'agent', a.id, 'pool', a.pool, 'place', '',
    'deadline', deadline, 'offered', NOW, 'why', why)
  c.state, c.agent, c.pool, c.place, c.deadline = 'reserved', a.id, a.pool, '', deadline
  charge(a, c)
  call('ZADD', K_TIMERS, deadline, 'o|' .. c.id)
  -- wake the agent's long poll or event stream, in whichever process holds it
  call('SPUBLISH', P .. 'offers', a.id)
  emit('contact.reserved', cfields(c, { 'agent', a.id, 'pool', a.pool, 'deadline', deadline,
    'wait_ms', NOW - c.created, 'why', why }))
end

-- Offer a waiting contact to the best eligible agent, if any. Returns the agent id.
local function route_contact(c)
  if c.state ~= 'queued' then return nil end
  -- held while its queue is closed (hold:<queue>): the `q|` timer queues it
  if string.sub(c.place, 1, 5) == 'hold:' then return nil end
  if string.sub(c.place, 1, 3) == 'aw:' then
    -- waiting for one named agent (preferred agent, transfer to agent)
    local a = load_agent(c.pref)
    if a and pool_open(a.pool) and pool_has_room(a.pool)
      and region_allows(a.pool, str(call('HGET', P .. 'c:' .. c.id, 'region'))) then
      local cap, load = capload(a, c.channel)
      if ready_on(a, c.channel, cap, load) then
        offer(c, a, why_json('preferred_agent', 'named agent is ready', a.id, {}))
        return a.id
      end
    end
    return nil
  end
  local aid, seen = find_agent(c)
  if not aid then return nil end
  local a = load_agent(aid)
  local qc = qcfg(c.queue)
  offer(c, a, why_json(STRAT_NAMES[qc.strat] or qc.strat, 'best head among ready agents', aid, seen))
  return aid
end

-- Best waiting contact for an agent: the head of aw:<agent>, else the best
-- score across the heads of w:<q>:<ch>:<k> for each lane and k >= entry stage
-- (k >= 0 while a `when_unstaffed` stage lets the agent in early: read_from).
local function find_contact(a)
  if a.status ~= 'available' or not pool_open(a.pool) or not pool_has_room(a.pool) then
    return nil
  end
  local cl = {}
  local function ok_on(ch)
    local x = cl[ch]
    if x == nil then
      local cap, load = capload(a, ch)
      x = ready_on(a, ch, cap, load)
      cl[ch] = x
    end
    return x
  end
  local direct = call('ZRANGE', P .. 'aw:' .. a.id, 0, 7)
  for i = 1, #direct do
    local v = call('HMGET', P .. 'c:' .. direct[i], 'channel', 'region')
    local ch = v[1]
    if ch and ok_on(ch) and region_allows(a.pool, str(v[2])) then
      return direct[i], 'named agent', {}
    end
  end
  local nd = call('SCARD', P .. 'ad:' .. a.id)
  local av = pool_vendor(a.pool)
  local nv = 0
  if av ~= '' then nv = call('SCARD', P .. 'vdc:' .. av) end
  nd = nd + nv
  if nd > DECLINE_SCAN then nd = DECLINE_SCAN end
  local lanes = agent_lanes(a)
  local best, bestscore
  local seen = {}
  for i = 1, #lanes do
    local lane, q = lanes[i].lane, lanes[i].q
    if ok_on(lanes[i].ch) then
      local qc = qcfg(q)
      if qc then
        for k = read_from(qc, lane, lanes[i].e), qc.nst - 1 do
          local items = call('ZRANGE', P .. 'w:' .. lane .. ':' .. k, 0, nd, 'WITHSCORES')
          for j = 1, #items, 2 do
            local cid = items[j]
            if nd == 0 or not (declined_by(cid, a.id)
                or (nv > 0 and call('SISMEMBER', P .. 'vdc:' .. av, cid) == 1)) then
              local sc = tonumber(items[j + 1])
              seen[#seen + 1] = { contact = cid, queue = q, stage = k, score = sc }
              -- ties across lanes go to the lower contact id, as within a lane (the
              -- sorted set's order): the choice does not depend on lane order,
              -- which follows the history of sub-queues and config changes
              if not best or sc < bestscore or (sc == bestscore and cid < best) then
                best, bestscore = cid, sc
              end
              break
            end
          end
        end
      end
    end
  end
  return best, 'best effective priority, then longest waiting, across lanes', seen
end

-- Give a ready agent waiting work until it is full or nothing fits.
local function route_agent(a)
  local guard = 0
  while guard < 64 do
    guard = guard + 1
    local cid, reason, seen = find_contact(a)
    if not cid then return end
    local c = load_contact(cid)
    offer(c, a, why_json('best_waiting_contact', reason, a.id, seen))
  end
end

-- Remove every trace of a finished contact except its record, which expires.
local function finish(c)
  local ckey = P .. 'c:' .. c.id
  call('ZREM', K_TIMERS, 'o|' .. c.id, 's|' .. c.id, 'p|' .. c.id, 'w|' .. c.id, 'q|' .. c.id,
    'aw|' .. c.id, 'ab|' .. c.id, 'fw|' .. c.id, 'fb|' .. c.id, 'rw|' .. c.id, 'rb|' .. c.id)
  local dkey = P .. 'dc:' .. c.id
  local decl = call('SMEMBERS', dkey)
  for i = 1, #decl do call('SREM', P .. 'ad:' .. decl[i], c.id) end
  call('DEL', dkey)
  forget_vendor_declines(c)
  call('PEXPIRE', ckey, meta().ret)
  -- the conversation's timeline and thread index keys go with the contact
  call('PEXPIRE', P .. 'tl:' .. c.id, meta().ret)
  for k in string.gmatch(str(call('HGET', ckey, 'threads')), '[^,]+') do
    call('PEXPIRE', P .. k, meta().ret)
  end
end

local release_reservations -- defined below; requeue and it call each other

-- Put a reserved contact back where it waited (same score, same stage) after a
-- reject, a timeout or its agent leaving. A miss (reject, timeout) is counted
-- against the agent, and the agent is skipped for this contact from then on.
local function requeue(c, a, etype, reason, is_miss)
  local from = c.agent
  call('ZREM', K_TIMERS, 'o|' .. c.id)
  uncount_period(c)
  release(a, c)
  if is_miss then
    -- skip this agent next time: it declined, or did not answer
    call('SADD', P .. 'dc:' .. c.id, a.id)
    call('SADD', P .. 'ad:' .. a.id, c.id)
  end
  if c.pref ~= '' then
    call('HSET', P .. 'c:' .. c.id, 'pref', '')
    c.pref = ''
  end
  place_in_queue(c)
  emit(etype, cfields(c, { 'agent', from, 'pool', a.pool, 'reason', reason,
    'wait_ms', NOW - c.created }))
  if is_miss then
    a.misses = a.misses + 1
    call('HSET', P .. 'a:' .. a.id, 'misses', a.misses)
    local maxmiss = meta().maxmiss
    if maxmiss > 0 and a.misses >= maxmiss and a.status == 'available' then
      set_status(a, 'away', 'missed_offers')
      release_reservations(a, 'agent_away')
    end
  end
end

-- Return every reserved contact of an agent that left (away, offline).
release_reservations = function(a, reason)
  local held = call('SMEMBERS', P .. 'ac:' .. a.id)
  local moved = {}
  for i = 1, #held do
    local c = load_contact(held[i])
    if c and c.state == 'reserved' then
      requeue(c, a, 'contact.reservation_rejected', reason, false)
      moved[#moved + 1] = c
    end
  end
  for i = 1, #moved do route_contact(moved[i]) end
end

-- Move a contact's stage on (timer, or an SLA escalation: `reason`), and
-- re-route it if it is waiting.
local function advance_stage(c, reason)
  local qc = qcfg(c.queue)
  -- only a contact still waiting (or on offer, and so maybe back soon) overflows
  if c.state ~= 'queued' and c.state ~= 'reserved' then return end
  if not qc or c.stage + 1 >= qc.nst then return end
  local from = c.stage
  c.stage = from + 1
  call('HSET', P .. 'c:' .. c.id, 'stage', c.stage)
  if c.state == 'queued' and string.sub(c.place, 1, 2) == 'w:' then
    call('ZREM', P .. c.place, c.id)
    c.place = 'w:' .. c.queue .. ':' .. c.channel .. ':' .. c.stage
    call('ZADD', P .. c.place, c.score, c.id)
    call('HSET', P .. 'c:' .. c.id, 'place', c.place)
  end
  emit('contact.stage_advanced', cfields(c, { 'from_stage', from,
    'reason', reason or 'overflow_timer' }))
  schedule_stage(c)
  route_contact(c)
end

-- Handle time per concurrent slot, for the wait estimate of create_contact: an
-- exponentially weighted mean per configured queue and channel, in qs:<queue>
-- fields aht:<ch> (ms) and n:<ch> (samples). The weight is 1/n for the first
-- samples (a plain mean) and AHT_WEIGHT after that: about the last 20 contacts.
-- An agent working `cap` contacts of the channel at once frees a slot every
-- handle/cap ms at full load, which is what a waiting contact waits for.
local AHT_WEIGHT = 0.1
local function record_handle_time(c, a, handle_ms)
  local cap = 1
  if a then cap = math.max(1, (capload(a, c.channel))) end
  local key = P .. 'qs:' .. base_queue(c.queue)
  local v = call('HMGET', key, 'aht:' .. c.channel, 'n:' .. c.channel)
  local n = math.min(num(v[2], 0) + 1, 1000000)
  local sample = math.max(0, handle_ms) / cap
  local aht = num(v[1], sample)
  aht = aht + math.max(AHT_WEIGHT, 1 / n) * (sample - aht)
  call('HSET', key, 'aht:' .. c.channel, string.format('%.1f', aht), 'n:' .. c.channel, n)
end

local function complete_now(c, a, disposition)
  local assigned = num(c.assigned, NOW)
  local wrapat = num(c.wrapat, NOW)
  if c.assigned ~= '' then record_handle_time(c, a, NOW - assigned) end
  local ckey = P .. 'c:' .. c.id
  -- whether this wait had a recorded first response, as of now: a reopen clears
  -- the contact's `responded` before the metrics read this event
  local responded = call('HEXISTS', ckey, 'responded')
  if c.assigned ~= '' and c.agent ~= '' then
    -- who handled this conversation: a survey that comes after a reopen is
    -- still credited to them (survey.lua)
    call('HSET', ckey, 'state', 'completed', 'completed', NOW, 'disposition', disposition,
      'done_agent', c.agent, 'done_pool', c.pool)
  else
    call('HSET', ckey, 'state', 'completed', 'completed', NOW, 'disposition', disposition)
  end
  c.state = 'completed'
  emit('contact.completed', cfields(c, { 'agent', c.agent, 'pool', c.pool,
    'talk_ms', wrapat - assigned, 'wrap_ms', NOW - wrapat, 'handle_ms', NOW - assigned,
    'disposition', disposition, 'responded', responded }))
  if c.cust ~= '' then
    call('SET', P .. 'cl:' .. c.cust, c.agent, 'PX', meta().ret)
  end
  finish(c)
  if a then
    release(a, c)
    route_agent(a)
  end
end
