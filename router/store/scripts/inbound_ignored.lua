--[[
inbound_ignored: an inbound item that is recorded and counted but never routed
(an auto-reply, a bounce, bulk mail, an unknown provider event, a status for no
known conversation).

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  channel
ARGV[3]  reason
ARGV[4]  provider
ARGV[5]  the provider's id of the item, or ''

Returns  { count of this channel and reason so far }
Errors   none
Events   inbound.ignored { channel, reason, provider, external_id }
]]

--!include lib/base.lua

local n = call('HINCRBY', P .. 'ignored', ARGV[2] .. ':' .. ARGV[3], 1)
emit('inbound.ignored', { 'channel', ARGV[2], 'reason', ARGV[3], 'provider', ARGV[4],
  'external_id', ARGV[5] })
return { n }
