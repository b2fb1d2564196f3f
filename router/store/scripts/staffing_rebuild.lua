--[[
staffing_rebuild: recount the per-pool staffing of lanes (sp:<lane>, pool ->
agents signed in as available with that lane) from the staffing sets
(sa:<lane>), which the `when_unstaffed` overflow stages read. Run by
Engine.apply_config, so counts kept by an older version (or none) become right.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  lanes: 'queue:channel,...'

Returns  number of lanes recounted
Errors   none
Events   none (no state of a contact or agent changes)
]]

--!include lib/base.lua

local n = 0
for lane in string.gmatch(ARGV[2], '[^,]+') do
  local skey = P .. 'sp:' .. lane
  call('DEL', skey)
  local members = call('SMEMBERS', P .. 'sa:' .. lane)
  for i = 1, #members do
    local pool = call('HGET', P .. 'a:' .. members[i], 'pool')
    if pool then call('HINCRBY', skey, pool, 1) end
  end
  n = n + 1
end
return n
