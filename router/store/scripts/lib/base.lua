--[[
lib/base.lua: what every transition script needs: the tenant prefix, `now`,
typed errors, config and record readers, and `emit`.

Included by lib/core.lua, and directly by scripts that change one record and
route nothing (accept, wrap_up, heartbeat): they skip the routing core's cost.
  KEYS[1]  sb:{tenant}:meta   the tenant anchor; every other key is built from its prefix
  ARGV[1]  now, in ms, from the engine's Clock (scripts never call TIME)
]]

local P = string.sub(KEYS[1], 1, -5) -- strip "meta": "sb:{tenant}:"
local NOW = tonumber(ARGV[1])
local call = redis.call
local K_EVENTS = P .. 'events'
local K_TIMERS = P .. 'timers'
local K_CLOSED = P .. 'pools:closed'
local DECLINE_SCAN = 32 -- how far past declined entries a head lookup may look

local function raise(code, msg)
  error({ err = code .. ' ' .. msg })
end

if not NOW then raise('SBINVALID', 'now must be a number of ms, not ' .. tostring(ARGV[1])) end

local function num(v, default)
  if v == false or v == nil or v == '' then return default end
  return tonumber(v)
end

local function str(v)
  if v == false or v == nil then return '' end
  return v
end

-- tenant settings ---------------------------------------------------------

local META
local function meta()
  if not META then
    local v = call('HMGET', P .. 'meta', 'excl', 'maxmiss', 'presence', 'ret', 'prefms', 'xferms')
    META = {
      excl = str(v[1]),
      maxmiss = num(v[2], 3),
      presence = num(v[3], 0),
      ret = num(v[4], 86400000),
      prefms = num(v[5], 0),
      xferms = num(v[6], 0),
    }
  end
  return META
end

local function is_excl(ch)
  return string.find(meta().excl, ',' .. ch .. ',', 1, true) ~= nil
end

-- queue config (written by the engine from the typed config) ---------------

local QC = {}
local function qcfg(q)
  local c = QC[q]
  if c == nil then
    local v = call('HMGET', P .. 'q:' .. q, 'chans', 'nst', 'after', 'pools', 'aging', 'offer',
      'strat', 'max', 'full', 'ovq', 'wrap', 'moved', 'ewait', 'unst')
    if not v[1] then
      QC[q] = false
      return false
    end
    c = {
      id = q, chans = v[1], nst = tonumber(v[2]), aging = tonumber(v[5]), offer = tonumber(v[6]),
      strat = v[7], max = num(v[8], 0), full = str(v[9]), ovq = str(v[10]),
      after = {}, pools = {}, wrap = {}, moved = nil, ewait = {}, unst = {}, any_unst = false,
    }
    local i = 0
    for s in string.gmatch(v[3], '[^,]+') do
      c.after[i] = tonumber(s)
      i = i + 1
    end
    -- early-opening triggers per stage: ewait[k] ms (0 = none), unst[k] true
    -- (lib/core.lua open_stage; create_contact's estimated-wait entry)
    i = 0
    for s in string.gmatch(str(v[13]), '[^,]+') do
      c.ewait[i] = tonumber(s)
      i = i + 1
    end
    i = 0
    for s in string.gmatch(str(v[14]), '[^,]+') do
      c.unst[i] = s == '1'
      if s == '1' then c.any_unst = true end
      i = i + 1
    end
    for p, s in string.gmatch(v[4], '([^,=]+)=(%d+)') do
      c.pools[#c.pools + 1] = { p, tonumber(s) }
    end
    for ch, ms in string.gmatch(str(v[11]), '([^,=]+)=(%d+)') do
      c.wrap[ch] = tonumber(ms)
    end
    -- a queue removed from the config: `moved` = "<channel>=<queue>,...", where
    -- its contacts go (engine.apply_config); new contacts may not join it
    if v[12] then
      c.moved = {}
      for ch, dest in string.gmatch(v[12], '([^,=]+)=([^,]+)') do
        c.moved[ch] = dest
      end
    end
    QC[q] = c
  end
  return c
end

local function queue_has_channel(qc, ch)
  return string.find(qc.chans, ',' .. ch .. ',', 1, true) ~= nil
end

local PO = {}
local function pool_open(p)
  local o = PO[p]
  if o == nil then
    o = call('SISMEMBER', K_CLOSED, p) == 0
    PO[p] = o
  end
  return o
end

-- events ------------------------------------------------------------------

local function emit(etype, fields)
  local args = { K_EVENTS, '*', 'v', '1', 'type', etype, 'at', NOW }
  for i = 1, #fields do args[#args + 1] = fields[i] end
  return call('XADD', unpack(args))
end

-- contacts ----------------------------------------------------------------

local CF = { 'state', 'queue', 'channel', 'stage', 'score', 'prio', 'created', 'qentered', 'agent',
  'place', 'pref', 'deadline', 'assigned', 'pool', 'wrapat', 'cust', 'offered', 'sig', 'dv', 'vend' }

-- One table per contact and per agent within a script run: every function
-- that changes one sees the others' changes (two copies of the same agent
-- would charge its load twice from a stale count).
local CONTACTS = {}
local AGENTS = {}

local function load_contact(cid)
  local cached = CONTACTS[cid]
  if cached then return cached end
  local v = call('HMGET', P .. 'c:' .. cid, unpack(CF))
  if not v[1] then return nil end
  local c = { id = cid }
  CONTACTS[cid] = c
  for i = 1, #CF do c[CF[i]] = str(v[i]) end
  c.stage = num(c.stage, 0)
  c.score = num(c.score, 0)
  c.prio = num(c.prio, 0)
  c.created = num(c.created, NOW)
  c.qentered = num(c.qentered, NOW)
  return c
end

-- Let the contacts that skip vendor v after a timeout (vdc:<vendor>, their
-- `dv` field) go to it again: it answered, or its failing pause is over. Their
-- number stays small (at most its fail_after_timeouts plus the offers then
-- out), and the vendor's lanes are dispatched on the next timer run (`v|`).
local function clear_vendor_declines(v)
  local vkey = P .. 'vdc:' .. v
  local skipped = call('SMEMBERS', vkey)
  for i = 1, #skipped do
    local ckey = P .. 'c:' .. skipped[i]
    local dv = str(call('HGET', ckey, 'dv'))
    local a, b = string.find(dv, ',' .. v .. ',', 1, true) -- plain: ids hold '-'
    if a then dv = string.sub(dv, 1, a) .. string.sub(dv, b + 1) end
    if dv == ',' or dv == '' then call('HDEL', ckey, 'dv') else call('HSET', ckey, 'dv', dv) end
    local cached = CONTACTS[skipped[i]]
    if cached then cached.dv = (dv == ',' and '' or dv) end
  end
  call('DEL', vkey)
  if #skipped > 0 then call('ZADD', K_TIMERS, NOW, 'v|' .. v) end
end

local function must_contact(cid)
  local c = load_contact(cid)
  if not c then raise('SBNOCONTACT', 'contact ' .. cid .. ' does not exist') end
  return c
end

-- A routing queue is a configured queue, or a sub-queue `<queue>~<sig>` that
-- the engine creates for contacts whose skill requirements go beyond their
-- queue's. Events always name the configured queue.
local function base_queue(q)
  return (string.match(q, '^([^~]+)'))
end

-- The contact, which must be on offer to this agent.
local function must_offer(cid, aid)
  local c = must_contact(cid)
  if c.state ~= 'reserved' then
    raise('SBSTATE', 'contact ' .. c.id .. ' is ' .. c.state .. ', not reserved')
  end
  if c.agent ~= aid then
    raise('SBWRONGAGENT', 'contact ' .. c.id .. ' is not offered to agent ' .. aid)
  end
  return c
end

local function cfields(c, extra)
  local base = base_queue(c.queue)
  local f = { 'contact', c.id, 'queue', base, 'channel', c.channel, 'stage', c.stage,
    'priority', c.prio, 'created', c.created }
  if base ~= c.queue then
    f[#f + 1] = 'subqueue'
    f[#f + 1] = c.queue
  end
  if extra then
    for i = 1, #extra do f[#f + 1] = extra[i] end
  end
  return f
end

-- agents ------------------------------------------------------------------

local function load_agent(aid)
  local cached = AGENTS[aid]
  if cached then return cached end
  local v = call('HMGET', P .. 'a:' .. aid, 'status', 'pool', 'idle', 'tload', 'xload', 'misses',
    'reason')
  if not v[1] then return nil end
  local a = { id = aid, status = v[1], pool = v[2], idle = num(v[3], 0), tload = num(v[4], 0),
    xload = num(v[5], 0), misses = num(v[6], 0), reason = str(v[7]) }
  AGENTS[aid] = a
  return a
end

local function must_agent(aid)
  local a = load_agent(aid)
  if not a then raise('SBNOAGENT', 'agent ' .. aid .. ' does not exist') end
  return a
end

