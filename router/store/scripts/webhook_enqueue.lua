--[[
webhook_enqueue: acknowledge a batch of stream entries read by the `webhooks`
consumer group, and enqueue one delivery per entry and matching subscription,
in one script. XACK answers 1 only the first time an entry is acknowledged,
so an entry read again after a consumer crash never enqueues twice.

A delivery `<entry id>.<subscription>` is the hash wh:d:<delivery> (fields:
sub, event, type, body, attempts, created, lease, error, status, last) and a
member of wh:due:<subscription> with score = when it is due (ms).

A subscription that already has `max pending` deliveries (waiting or being
sent) gets no more: a dead receiver must not fill Redis with bodies, and with
it the routing writes. Such a delivery is not stored; it is counted in the
hash wh:drop:<subscription>, so the operator can replay what was lost from the
stream. `count` counts every drop; `first`, `last`, `first_at`, `last_at` and
`run_count` describe the latest run of drops: one outage, whose first..last
range holds no event delivered to the subscription. The run ends
(`ended_at` = now) when a delivery of the subscription is stored again; the
next drop starts a new run and moves the ended one to `previous` (JSON, newest
first, at most PREVIOUS_RUNS runs).

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  the consumer group (`webhooks`)
ARGV[3]  max pending deliveries per subscription (>= 1)
ARGV[4]  number of entries n, then per entry:
           entry id, event type, body (the JSON POSTed), k, then k subscription ids

Returns  { entries acknowledged now, deliveries enqueued,
           { subscription, deliveries dropped, ... } (subscriptions at their cap) }
Errors   SBINVALID (malformed arguments)
]]

--!include lib/base.lua

local group = ARGV[2]
local cap = tonumber(ARGV[3])
if not cap or cap < 1 then raise('SBINVALID', 'max pending must be a positive number') end
local n = tonumber(ARGV[4])
if not n or n < 0 then raise('SBINVALID', 'entry count must be a number') end
local acked, enqueued = 0, 0
local size = {}  -- subscription -> deliveries it has, kept up to date in this batch
local drops = {} -- subscription -> its wh:drop record, loaded once, written at the end
local PREVIOUS_RUNS = 10

local function drop_record(sub)
  local d = drops[sub]
  if d then return d end
  local v = call('HMGET', P .. 'wh:drop:' .. sub, 'first', 'last', 'first_at', 'last_at',
    'run_count', 'ended_at', 'count')
  d = { first = v[1], last = v[2], first_at = v[3], last_at = v[4],
        run_count = tonumber(v[5]) or tonumber(v[7]) or 0, ended_at = v[6] or '',
        added = 0, ended = {}, dirty = false }
  d.open = d.first and d.ended_at == ''
  drops[sub] = d
  return d
end
local i = 5
for _ = 1, n do
  local eid, etype, body, k = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  if not k then raise('SBINVALID', 'subscription count must be a number') end
  i = i + 4
  if call('XACK', K_EVENTS, group, eid) == 1 then
    acked = acked + 1
    for j = 0, k - 1 do
      local sub = ARGV[i + j]
      local did = eid .. '.' .. sub
      local key = P .. 'wh:d:' .. did
      local due_key = P .. 'wh:due:' .. sub
      local have = size[sub] or call('ZCARD', due_key)
      if have >= cap then
        local d = drop_record(sub)
        if not d.open then -- a new run: the ended one (if any) becomes a previous one
          if d.first then
            table.insert(d.ended, 1, { first = d.first, last = d.last,
              first_at = tonumber(d.first_at), last_at = tonumber(d.last_at),
              count = d.run_count, ended_at = tonumber(d.ended_at) })
          end
          d.first, d.first_at, d.run_count, d.ended_at, d.open = eid, NOW, 0, '', true
        end
        d.run_count = d.run_count + 1
        d.last, d.last_at, d.added, d.dirty = eid, NOW, d.added + 1, true
      elseif call('EXISTS', key) == 0 then
        call('HSET', key, 'sub', sub, 'event', eid, 'type', etype, 'body', body,
          'attempts', 0, 'created', NOW, 'lease', '', 'error', '', 'status', '', 'last', '')
        call('ZADD', due_key, NOW, did)
        have = have + 1
        enqueued = enqueued + 1
        local d = drop_record(sub)
        if d.open then -- stored again: the run of drops is over
          d.ended_at, d.open, d.dirty = NOW, false, true
        end
      end
      size[sub] = have
    end
  end
  i = i + k
end
local dropped = {}
for sub, have in pairs(size) do
  if have > 0 then call('SADD', P .. 'wh:active', sub) end
  local d = drops[sub]
  if d and d.dirty then
    local dk = P .. 'wh:drop:' .. sub
    call('HINCRBY', dk, 'count', d.added)
    call('HSET', dk, 'first', d.first, 'last', d.last, 'first_at', d.first_at,
      'last_at', d.last_at, 'run_count', d.run_count, 'ended_at', d.ended_at)
    if #d.ended > 0 then
      local prev = d.ended
      local old = call('HGET', dk, 'previous')
      if old then
        for _, run in ipairs(cjson.decode(old)) do prev[#prev + 1] = run end
      end
      while #prev > PREVIOUS_RUNS do table.remove(prev) end
      call('HSET', dk, 'previous', cjson.encode(prev))
    end
  end
  if d and d.added > 0 then
    dropped[#dropped + 1] = sub
    dropped[#dropped + 1] = d.added
  end
end
return { acked, enqueued, dropped }
