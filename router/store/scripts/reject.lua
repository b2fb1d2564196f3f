--[[
reject: the agent declines the offer: reserved -> queued, same position.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  contact id
ARGV[3]  agent id
ARGV[4]  reason ('' = declined)

Returns  { state of the contact afterwards, agent it was re-offered to or '' }
Errors   SBNOCONTACT, SBSTATE (not reserved), SBWRONGAGENT
Events   contact.reservation_rejected, maybe agent.status_changed (too many misses),
         then contact.reserved for the next offer(s).
]]

--!include lib/core.lua

local c = must_offer(ARGV[2], ARGV[3])
local aid = ARGV[3]
local a = must_agent(aid)
local reason = ARGV[4]
if reason == '' then reason = 'declined' end
requeue(c, a, 'contact.reservation_rejected', reason, true)
local other = route_contact(c)
route_agent(a)
return { c.state, other or '' }
