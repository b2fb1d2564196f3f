--[[
webhook_purge: drop the waiting deliveries of a subscription that no longer
exists (deleted through the admin API, or removed from the config), a bounded
number per call. Its dead letters stay until their retention ends. Once none
is left, its count of dropped deliveries (wh:drop:<subscription>) goes too.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  subscription id
ARGV[3]  at most this many deliveries

Returns  { deliveries dropped, deliveries left }
Errors   SBINVALID (limit)
]]

--!include lib/base.lua

local sub, limit = ARGV[2], tonumber(ARGV[3])
if not limit or limit < 1 then raise('SBINVALID', 'limit must be a positive number') end
local due_key = P .. 'wh:due:' .. sub
local ids = call('ZRANGE', due_key, 0, limit - 1)
for _, did in ipairs(ids) do
  call('DEL', P .. 'wh:d:' .. did)
  call('ZREM', due_key, did)
end
local left = call('ZCARD', due_key)
if left == 0 then
  call('SREM', P .. 'wh:active', sub)
  call('DEL', P .. 'wh:drop:' .. sub)
end
return { #ids, left }
