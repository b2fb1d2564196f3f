--[[
webhook_subscribe: add a subscription made through the admin API to wh:subs,
unless its id is taken or the tenant already has the most allowed. The check
and the write are one script, so simultaneous creates cannot exceed the limit.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  subscription id
ARGV[3]  the subscription, JSON {url, events, secret, created}
ARGV[4]  most subscriptions allowed in wh:subs

Returns  1 created, 0 the id is taken, -1 the limit is reached
Errors   SBINVALID (limit)
]]

--!include lib/base.lua

local cap = tonumber(ARGV[4])
if not cap or cap < 0 then raise('SBINVALID', 'limit must be a number') end
local subs = P .. 'wh:subs'
if call('HEXISTS', subs, ARGV[2]) == 1 then return 0 end
if call('HLEN', subs) >= cap then return -1 end
call('HSET', subs, ARGV[2], ARGV[3])
return 1
