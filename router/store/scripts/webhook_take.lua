--[[
webhook_take: lease due deliveries to one sender. Each taken delivery gets a
lease token and its due time moves to the end of the lease, so no other
sender takes it while this one sends; a sender that dies loses its lease
when it ends, and another sender tries again (at least once). `attempts` is
counted here. A due delivery that has already had `max attempts` attempts
(its last sender died, or lost its lease, before recording an outcome) is not
sent again: it becomes a dead letter here, so a delivery that kills every
sender still ends as a dead letter instead of being leased forever. The last
sender's token is kept in `late`: if that sender merely lost its lease and
reports its outcome after all, webhook_result accepts it (a late `ok` removes
the dead letter: the event was delivered, and a replay would send it twice).

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  lease length (ms)
ARGV[3]  token prefix, unique to the sender (the token is <prefix>:<attempt>)
ARGV[4]  max attempts per delivery (>= 1)
ARGV[5]  dead-letter retention (ms)
ARGV[6]  dead-letter cap (entries)
ARGV[7..] pairs: subscription id, how many of its deliveries to take at most

Returns  { a flat list, 6 values per delivery taken:
             delivery id, subscription, event id, event type, body, attempt number,
           the ids of the deliveries dead-lettered instead }
Errors   SBINVALID (malformed arguments)
]]

--!include lib/base.lua
--!include lib/webhooks.lua

local lease = tonumber(ARGV[2])
if not lease or lease < 1 then raise('SBINVALID', 'lease must be a positive number of ms') end
local prefix = ARGV[3]
local max_attempts = tonumber(ARGV[4])
if not max_attempts or max_attempts < 1 then
  raise('SBINVALID', 'max attempts must be a positive number')
end
local out, dead = {}, {}
for i = 7, #ARGV, 2 do
  local sub, want = ARGV[i], tonumber(ARGV[i + 1])
  if not want then raise('SBINVALID', 'take count must be a number') end
  if want > 0 then
    local due_key = P .. 'wh:due:' .. sub
    local ids = call('ZRANGEBYSCORE', due_key, '-inf', NOW, 'LIMIT', 0, want)
    for _, did in ipairs(ids) do
      local key = P .. 'wh:d:' .. did
      local v = call('HMGET', key, 'event', 'type', 'body', 'attempts', 'lease')
      if not v[1] then
        call('ZREM', due_key, did) -- its record is gone (purged): nothing to send
      elseif (tonumber(v[4]) or 0) >= max_attempts then
        call('HSET', key, 'lease', '', 'late', v[5] or '', 'status', '', 'last', NOW,
          'dead', NOW, 'error',
          'no outcome recorded for attempt ' .. v[4] .. ': its sender stopped or lost its lease')
        call('ZREM', due_key, did)
        call('ZADD', K_WH_DEAD, NOW, did)
        dead[#dead + 1] = did
      else
        local attempt = call('HINCRBY', key, 'attempts', 1)
        call('HSET', key, 'lease', prefix .. ':' .. attempt)
        call('ZADD', due_key, NOW + lease, did)
        local n = #out
        out[n + 1] = did
        out[n + 2] = sub
        out[n + 3] = v[1]
        out[n + 4] = v[2]
        out[n + 5] = v[3]
        out[n + 6] = attempt
      end
    end
    if call('ZCARD', due_key) == 0 then call('SREM', P .. 'wh:active', sub) end
  end
end
if #dead > 0 then trim_dead(tonumber(ARGV[5]), tonumber(ARGV[6])) end
return { out, dead }
