--[[
metrics_apply: read a batch of the tenant's events in the `metrics` consumer
group, add them to the metric buckets, and acknowledge them: one atomic step.

Reading and counting happen in the same script, so an entry is either read and
counted, or neither: a consumer that dies between two calls leaves nothing
half-applied and nothing pending, and any number of consumers (in any number
of processes) count each event exactly once. The read is XREADGROUP ... NOACK:
an entry that is counted in the same atomic step needs no pending-entry record
and no XACK (and a pending entry would be propagated to the AOF and replicas
as one XCLAIM each: about twice as slow, docs/benchmarks.md). Entries left pending by other readers
of the group are claimed, counted and XACKed in 'claim' mode. The group is
created from id 0 on first use (XGROUP CREATE ... MKSTREAM), so the events
still in the stream when metrics first run are counted too.

Counters go to three places (definitions: router/metrics/definitions.py and
docs/metrics.md), each by the event's `at` (engine clock):
  m:1m:<start>   minute buckets, kept MINUTE_KEEP_MS (the 15m and 1h windows)
  m:15m:<start>  15-minute intervals, kept ARGV[6] ms ("today" and history)
  m:tot          since the beginning (Prometheus counters)
with fields `q:<queue>:<counter>` and `p:<pool>:<counter>`; abandons and SLA
breaches are also counted per stage of the contact (`abn.<stage>`, `brch.<stage>`).
m:idx:1m and m:idx:15m index the buckets by start; buckets older than their retention on
the engine clock (ARGV[1]) are deleted here, so retention works in virtual time.
Counts are summed per batch in Lua tables and written once per bucket field.

Per contact, fields `mq` (queues that counted it as offered, `,a,b,`) and
`ma` (queues that counted it as answered) of its hash c:<id> (written only
while the hash exists) make `offered` and `answered` once per contact per
queue across transfers. A reopened contact starts afresh.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms, engine clock): retention only
ARGV[2]  consumer name
ARGV[3]  batch size: at most this many entries
ARGV[4]  '>' new entries, or 'claim': entries left pending by any consumer
         (XAUTOCLAIM; only code that read without this script leaves any)
ARGV[5]  abandon grace, ms (abandons within it leave the service level's denominator)
ARGV[6]  history retention of the 15-minute intervals, ms
ARGV[7]  service-level clocks: '<queue>=<ms>,...' (answer clock: answered within
         <ms>) or '<queue>=f<ms>,...' (first-response clock: first response within
         <ms>, from contact.responded, or the completion when none was recorded:
         contact.completed's `responded` = 0)
ARGV[8]  threshold for a queue not listed (removed from the config), ms: answer clock

Returns  { entries applied, id of the last one or '', cursor }: cursor is XAUTOCLAIM's
         next start in 'claim' mode ('0-0': nothing left pending), '' otherwise
Errors   none of its own (a missing group is created)
Events   none
]]

--!include lib/base.lua

local GROUP = 'metrics'
local MIN = 60000
local QTR = 900000
local MINUTE_KEEP_MS = 7200000 -- two hours of minute buckets: the 1h window and slack
local ALERTS_MAX = 50
local PRUNE_MAX = 200 -- buckets deleted per call at most

local consumer, count, mode = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local GRACE = tonumber(ARGV[5])
local HIST = tonumber(ARGV[6])
local TH_DEFAULT = tonumber(ARGV[8])
local TH, FR = {}, {} -- queue -> T in ms; queue -> true when T is a first-response time
for q, f, ms in string.gmatch(ARGV[7], '([^,=]+)=(f?)(%d+)') do
  TH[q] = tonumber(ms)
  FR[q] = f == 'f'
end

local CUT1 = NOW - NOW % MIN - MINUTE_KEEP_MS -- minute buckets starting before: dropped
local CUT15 = NOW - NOW % QTR - HIST

-- read ---------------------------------------------------------------------

local entries
local cursor = '' -- claim mode: XAUTOCLAIM's next cursor ('0-0' once nothing is left)
if mode == 'claim' then
  -- COUNT counts the ids of entries deleted from the stream too (returned apart, and
  -- dropped from the pending list), so a call can claim no live entry while more
  -- remain: the caller loops until the cursor comes back as 0-0. Starting from 0-0
  -- each call is right, since the entries claimed here leave the pending list.
  local r = redis.pcall('XAUTOCLAIM', K_EVENTS, GROUP, consumer, 0, '0-0', 'COUNT', count)
  if type(r) ~= 'table' or r.err then return { 0, '', '0-0' } end
  cursor = r[1]
  entries = r[2]
else
  -- NOACK: counted in this same script, an entry never needs to be pending (a
  -- pending entry would also be written to the AOF and replicas as one XCLAIM each)
  local r = redis.pcall('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', count, 'NOACK',
    'STREAMS', K_EVENTS, '>')
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'NOGROUP', 1, true) then error(r) end
    call('XGROUP', 'CREATE', K_EVENTS, GROUP, '0', 'MKSTREAM')
    r = call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', count, 'NOACK', 'STREAMS',
      K_EVENTS, '>')
  end
  entries = (r and r[1] and r[1][2]) or {}
end
if #entries == 0 then return { 0, '', cursor } end

-- accumulate -----------------------------------------------------------------

-- per bucket start (a number): { field -> n }; written once per field at the end
local B1, B15 = {}, {}
local TOT = {}
local ALERTS = {}

local function bump(t, field, n)
  t[field] = (t[field] or 0) + n
end

local function bucket(b, start)
  local t = b[start]
  if not t then
    t = {}
    b[start] = t
  end
  return t
end

-- one counter of the event at `at`, into its minute, its quarter and the totals
local function add(at, field, n)
  local s1 = at - at % MIN
  if s1 >= CUT1 then bump(bucket(B1, s1), field, n) end
  local s15 = at - at % QTR
  if s15 >= CUT15 then bump(bucket(B15, s15), field, n) end
  bump(TOT, field, n)
end

-- [from, to) split over the buckets of size `size` it spans from `cut` on: the
-- partial first and last buckets by difference, every bucket between them whole.
-- One step per bucket kept: at most 121 minute buckets, and history_days x 96 + 1
-- quarters (the loader caps history_days at 400), however long the span.
local function split(b, size, cut, field, from, to)
  from = math.max(from, cut)
  if to <= from then return end
  local first, last = from - from % size, (to - 1) - (to - 1) % size
  if first == last then
    bump(bucket(b, first), field, to - from)
    return
  end
  bump(bucket(b, first), field, first + size - from)
  for s = first + size, last - size, size do bump(bucket(b, s), field, size) end
  bump(bucket(b, last), field, to - last)
end

-- time spent in [from, to) split over the buckets it spans (available time)
local function add_span(field, from, to)
  if to <= from then return end
  split(B1, MIN, CUT1, field, from, to)
  split(B15, QTR, CUT15, field, from, to)
  bump(TOT, field, to - from)
end

local function listed(list, q)
  return list ~= '' and string.find(list, ',' .. q .. ',', 1, true) ~= nil
end

local function contact_key(e)
  return P .. 'c:' .. e.contact
end

local function set_if_exists(key, field, value)
  if call('EXISTS', key) == 1 then call('HSET', key, field, value) end
end

local APPLY = {}

APPLY['contact.received'] = function(e, at)
  add(at, 'q:' .. e.queue .. ':off', 1)
end

APPLY['contact.reopened'] = function(e, at)
  call('HDEL', contact_key(e), 'mq', 'ma')
  add(at, 'q:' .. e.queue .. ':off', 1)
end

APPLY['contact.transferred'] = function(e, at)
  local key = contact_key(e)
  local from_q = base_queue(str(e.from_queue))
  if e.from_state == 'assigned' and from_q then
    -- answered there already: a later assignment in that queue is not a new answer
    local ma = str(call('HGET', key, 'ma'))
    if ma == '' then ma = ',' end
    if not listed(ma, from_q) then set_if_exists(key, 'ma', ma .. from_q .. ',') end
  end
  if str(e.to_agent) ~= '' then return end -- stays in its queue
  local mq = str(call('HGET', key, 'mq'))
  if mq == '' then mq = ',' .. (from_q or '') .. ',' end
  if not listed(mq, e.queue) then
    add(at, 'q:' .. e.queue .. ':off', 1)
    set_if_exists(key, 'mq', mq .. e.queue .. ',')
  end
end

APPLY['contact.assigned'] = function(e, at)
  local wait = num(e.wait_ms, 0)
  -- a first-response queue counts `within` at the first response, not here
  local within = 0
  if not FR[e.queue] and wait <= (TH[e.queue] or TH_DEFAULT) then within = 1 end
  if not listed(str(call('HGET', contact_key(e), 'ma')), e.queue) then
    local q = 'q:' .. e.queue .. ':'
    add(at, q .. 'ans', 1)
    add(at, q .. 'ans_t', within)
    add(at, q .. 'wait', wait)
  end
  if str(e.pool) ~= '' then
    local p = 'p:' .. e.pool .. ':'
    add(at, p .. 'ans', 1)
    add(at, p .. 'ans_t', within)
    add(at, p .. 'wait', wait)
  end
end

APPLY['contact.abandoned'] = function(e, at)
  local q = 'q:' .. e.queue .. ':'
  add(at, q .. 'abn', 1)
  if num(e.wait_ms, 0) <= GRACE then add(at, q .. 'abn_g', 1) end
  -- by stage: a vendor scorecard counts the abandons at the stages open to its pools
  add(at, q .. 'abn.' .. string.format('%d', num(e.stage, 0)), 1)
end

-- first-response queues: the first response within T counts toward the service
-- level (queue and the responding agent's pool), in the bucket of the response
local function first_response(e, at, response_ms)
  if response_ms <= TH[e.queue] then
    add(at, 'q:' .. e.queue .. ':ans_t', 1)
    if str(e.pool) ~= '' then add(at, 'p:' .. e.pool .. ':ans_t', 1) end
  end
end

APPLY['contact.responded'] = function(e, at)
  if FR[e.queue] then first_response(e, at, num(e.response_ms, 0)) end
end

APPLY['contact.completed'] = function(e, at)
  if str(e.pool) == '' then return end -- never answered: no handle time
  if FR[e.queue] then
    -- completed without a recorded response: the completion is the first response
    -- (as in the contact view). The event says whether this wait had one (`responded`,
    -- as of the completion: a reopen clears the contact's own field before this runs).
    -- Events written without the field: the contact's hash, skipped once it expired.
    local responded = e.responded
    if responded == nil then
      local r = call('HMGET', contact_key(e), 'created', 'responded')
      if r[1] then responded = r[2] and '1' or '0' end
    end
    if responded == '0' then first_response(e, at, at - num(e.created, at)) end
  end
  local handle = num(e.handle_ms, 0)
  add(at, 'q:' .. e.queue .. ':hnd', 1)
  add(at, 'q:' .. e.queue .. ':hms', handle)
  add(at, 'p:' .. e.pool .. ':hnd', 1)
  add(at, 'p:' .. e.pool .. ':hms', handle)
end

-- a customer survey: CSAT sum and count, NPS promoters / passives / detractors and
-- count, for the contact's queue and the answering agent's pool (the event's
-- fields), in the bucket of the survey (which may come days after the contact)
APPLY['contact.surveyed'] = function(e, at)
  local owners = { 'q:' .. e.queue .. ':' }
  if str(e.pool) ~= '' then owners[2] = 'p:' .. e.pool .. ':' end
  local cs, np = num(e.csat, nil), num(e.nps, nil)
  for i = 1, #owners do
    local o = owners[i]
    if cs then
      add(at, o .. 'cs_s', cs)
      add(at, o .. 'cs_n', 1)
    end
    if np then
      add(at, o .. (np >= 9 and 'np_p' or np >= 7 and 'np_a' or 'np_d'), 1)
      add(at, o .. 'np_n', 1)
    end
  end
end

local function sla_event(counter)
  return function(e, at)
    add(at, 'q:' .. e.queue .. ':' .. counter, 1)
    -- breaches by stage: a vendor scorecard counts those at the stages open to its pools
    if counter == 'brch' then
      add(at, 'q:' .. e.queue .. ':brch.' .. string.format('%d', num(e.stage, 0)), 1)
    end
    -- stage: a pool-scoped reader sees the contact id only if its pool was eligible
    ALERTS[#ALERTS + 1] = cjson.encode({ type = e.type, contact = str(e.contact),
      queue = e.queue, sla = str(e.sla), at = at, stage = num(e.stage, 0) })
  end
end
APPLY['sla.breached'] = sla_event('brch')
APPLY['sla.warning'] = sla_event('warn')

local K_AV = P .. 'm:av'
APPLY['agent.status_changed'] = function(e, at)
  local aid = str(e.agent)
  if e.status == 'available' then
    if e.from ~= 'available' or call('HEXISTS', K_AV, aid) == 0 then
      call('HSET', K_AV, aid, str(e.pool) .. '|' .. string.format('%d', at))
    end
  elseif e.from == 'available' then
    local open = call('HGET', K_AV, aid)
    if open then
      local pool, since = string.match(open, '^(.*)|(%d+)$')
      if pool and pool ~= '' then add_span('p:' .. pool .. ':avail', tonumber(since), at) end
      call('HDEL', K_AV, aid)
    end
  end
end

local applied, last = 0, ''
local ids = {}
for i = 1, #entries do
  local id, raw = entries[i][1], entries[i][2]
  ids[#ids + 1] = id
  last = id
  if raw then -- nil: claimed, but trimmed meanwhile
    -- the engine writes v, type, at first (lib/base.lua emit): skip the events
    -- that count nothing without reading their fields
    local fn = true
    if raw[3] == 'type' then fn = APPLY[raw[4]] end
    if fn then
      local e = {}
      for j = 1, #raw, 2 do e[raw[j]] = raw[j + 1] end
      fn = APPLY[e.type]
      if fn and (e.queue == nil or e.queue ~= '') then
        if e.queue then e.queue = base_queue(e.queue) end
        fn(e, num(e.at, NOW))
      end
    end
    applied = applied + 1
  end
end

-- write ----------------------------------------------------------------------

for _, pair in ipairs({ { '1m', B1 }, { '15m', B15 } }) do
  local idx = P .. 'm:idx:' .. pair[1]
  for start, fields in pairs(pair[2]) do
    local s = string.format('%d', start)
    local key = P .. 'm:' .. pair[1] .. ':' .. s
    for field, n in pairs(fields) do
      if n ~= 0 then call('HINCRBY', key, field, n) end
    end
    call('ZADD', idx, s, s)
  end
end
for field, n in pairs(TOT) do
  if n ~= 0 then call('HINCRBY', P .. 'm:tot', field, n) end
end
if #ALERTS > 0 then
  call('LPUSH', P .. 'm:alerts', unpack(ALERTS))
  call('LTRIM', P .. 'm:alerts', 0, ALERTS_MAX - 1)
end
if mode == 'claim' then -- claimed entries are pending: acknowledge them
  for i = 1, #ids, 1000 do
    call('XACK', K_EVENTS, GROUP, unpack(ids, i, math.min(i + 999, #ids)))
  end
end

-- retention, on the engine clock
for _, pair in ipairs({ { '1m', CUT1 }, { '15m', CUT15 } }) do
  local idx = P .. 'm:idx:' .. pair[1]
  local old = call('ZRANGEBYSCORE', idx, '-inf', '(' .. string.format('%d', pair[2]), 'LIMIT', 0,
    PRUNE_MAX)
  for i = 1, #old do
    call('DEL', P .. 'm:' .. pair[1] .. ':' .. old[i])
    call('ZREM', idx, old[i])
  end
end

return { applied, last, cursor }
