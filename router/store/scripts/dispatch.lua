--[[
dispatch: match waiting contacts with ready agents on the given lanes, e.g.
after a configuration change. Routing is otherwise event-driven; this is the
catch-up for changes that open eligibility wholesale.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  lanes 'queue:channel,...'
ARGV[3]  max offers to make

Returns  { offers made }
Errors   SBINVALID (max offers)
Events   contact.reserved
]]

--!include lib/core.lua

--!include lib/dispatch.lua

local limit = tonumber(ARGV[3])
if not limit or limit < 1 then raise('SBINVALID', 'max offers must be a positive number') end
return { dispatch_lanes(ARGV[2], limit) }
