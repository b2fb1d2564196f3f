--[[
queue_retire: move the contacts waiting in a queue that the config removed to
where its `moved` field sends them (see follow_removed in lib/core.lua), and
route them there. Run by the engine after a config change, in batches.
Contacts on offer or with an agent stay; they move if they come back to wait.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  routing queue id (a configured queue or a sub-queue) marked removed
ARGV[3]  most contacts to move in this call

Returns  { moved, left }: left > 0 means call again; left counts only contacts
         that can move (a channel with nowhere to go stays where it is)
Errors   none (a queue that is not marked removed moves nothing)
Events   per contact: contact.transferred (reason queue_removed), then
         contact.reserved if an agent is ready.
]]

--!include lib/core.lua

local q, limit = ARGV[2], tonumber(ARGV[3])
local qc = qcfg(q)
if not qc or not qc.moved then return { 0, 0 } end
local moved, left = 0, 0
for ch in string.gmatch(qc.chans, '[^,]+') do
  if qc.moved[ch] then
    for k = 0, qc.nst - 1 do
      local wkey = P .. 'w:' .. q .. ':' .. ch .. ':' .. k
      if moved < limit then
        local ids = call('ZRANGE', wkey, 0, limit - moved - 1)
        for i = 1, #ids do
          local c = load_contact(ids[i])
          call('ZREM', wkey, c.id)
          place_in_queue(c)
          route_contact(c)
          moved = moved + 1
        end
      end
      left = left + call('ZCARD', wkey)
    end
  end
end
return { moved, left }
