--[[
lanes_add: give existing agents a lane in a new sub-queue, once, when the
engine creates the sub-queue. O(agents) once per distinct skill requirement,
never per routing decision.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  lane 'subqueue:channel'
ARGV[3..] pairs: agent id, 'entry:rank'

Returns  { agents given the lane }
Events   none (eligibility, not a state change), then contact.reserved for work
         the agents are given.
]]

--!include lib/core.lua

local lane = ARGV[2]
local n = 0
local touched = {}
for i = 3, #ARGV, 2 do
  local a = load_agent(ARGV[i])
  if a then
    call('HSET', P .. 'al:' .. a.id, lane, ARGV[i + 1])
    forget_lanes(a)
    sync_agent(a)
    touched[#touched + 1] = a
    n = n + 1
  end
end
for i = 1, #touched do route_agent(touched[i]) end
return { n }
