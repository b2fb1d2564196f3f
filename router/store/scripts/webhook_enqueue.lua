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
it the routing writes. Such a delivery is not stored; it is counted in
wh:drop:<subscription> (count, first and last event id, first_at, last_at), so
the operator can replay that range from the stream.

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
local drops = {} -- subscription -> { dropped, first event id, last event id }
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
        local d = drops[sub]
        if not d then
          d = { 0, eid, eid }
          drops[sub] = d
        end
        d[1] = d[1] + 1
        d[3] = eid
      elseif call('EXISTS', key) == 0 then
        call('HSET', key, 'sub', sub, 'event', eid, 'type', etype, 'body', body,
          'attempts', 0, 'created', NOW, 'lease', '', 'error', '', 'status', '', 'last', '')
        call('ZADD', due_key, NOW, did)
        have = have + 1
        enqueued = enqueued + 1
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
  if d then
    local dk = P .. 'wh:drop:' .. sub
    call('HINCRBY', dk, 'count', d[1])
    if call('HSETNX', dk, 'first', d[2]) == 1 then call('HSET', dk, 'first_at', NOW) end
    call('HSET', dk, 'last', d[3], 'last_at', NOW)
    dropped[#dropped + 1] = sub
    dropped[#dropped + 1] = d[1]
  end
end
return { acked, enqueued, dropped }
