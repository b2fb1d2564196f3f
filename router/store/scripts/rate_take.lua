--[[
rate_take: take up to `want` requests from a token bucket (per-token rate limit).
Not a transition: no event. Processes lease a few requests at a time and spend
them locally, so a busy token costs one call per lease, not one per request.

KEYS[1]  sb:{tenant}:meta   (the bucket is sb:{tenant}:rl:<token id>, hash { tokens, ts })
ARGV[1]  now (ms)
ARGV[2]  token id
ARGV[3]  rate (requests per second, > 0)
ARGV[4]  burst (bucket size, >= 1)
ARGV[5]  want (>= 1)

Returns  { granted, retry_ms }: granted in 0..want; retry_ms is how long until one
         request is available again (0 when granted > 0)
Errors   SBINVALID (a number that is not one)
]]

--!include lib/base.lua

local now, rate, burst, want = NOW, tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if not (rate and rate > 0 and burst and burst >= 1 and want and want >= 1) then
  raise('SBINVALID', 'rate, burst and want must be positive numbers')
end
local key = P .. 'rl:' .. ARGV[2]
local v = call('HMGET', key, 'tokens', 'ts')
local tokens, ts = tonumber(v[1]), tonumber(v[2])
if tokens == nil or ts == nil then
  tokens, ts = burst, now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
call('HSET', key, 'tokens', tostring(tokens), 'ts', ts)
call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
local retry = 0
if granted == 0 then
  retry = math.ceil((1 - tokens) * 1000 / rate)
end
return { granted, retry }
