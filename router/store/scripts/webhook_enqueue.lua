--[[
webhook_enqueue: acknowledge a batch of stream entries read by the `webhooks`
consumer group, and enqueue one delivery per entry and matching subscription,
in one script. XACK answers 1 only the first time an entry is acknowledged,
so an entry read again after a consumer crash never enqueues twice.

A delivery `<entry id>.<subscription>` is the hash wh:d:<delivery> (fields:
sub, event, type, body, attempts, created, lease, error, status, last) and a
member of wh:due:<subscription> with score = when it is due (ms).

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  the consumer group (`webhooks`)
ARGV[3]  number of entries n, then per entry:
           entry id, event type, body (the JSON POSTed), k, then k subscription ids

Returns  { entries acknowledged now, deliveries enqueued }
Errors   SBINVALID (malformed arguments)
]]

--!include lib/base.lua

local group = ARGV[2]
local n = tonumber(ARGV[3])
if not n or n < 0 then raise('SBINVALID', 'entry count must be a number') end
local acked, enqueued = 0, 0
local touched = {}
local i = 4
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
      if call('EXISTS', key) == 0 then
        call('HSET', key, 'sub', sub, 'event', eid, 'type', etype, 'body', body,
          'attempts', 0, 'created', NOW, 'lease', '', 'error', '', 'status', '', 'last', '')
        call('ZADD', P .. 'wh:due:' .. sub, NOW, did)
        touched[sub] = true
        enqueued = enqueued + 1
      end
    end
  end
  i = i + k
end
for sub in pairs(touched) do call('SADD', P .. 'wh:active', sub) end
return { acked, enqueued }
