--[[
lib/webhooks.lua: the dead-letter set's retention, shared by webhook_result
and webhook_dead. Needs lib/base.lua (P, NOW, call).
]]

local K_WH_DEAD = P .. 'wh:dead'
local TRIM_BATCH = 100 -- dead letters deleted per call at most: the script stays short

-- Delete dead letters older than `retention` ms, then the oldest beyond `cap`.
local function trim_dead(retention, cap)
  local dropped = 0
  if retention then
    local old = call('ZRANGEBYSCORE', K_WH_DEAD, '-inf', NOW - retention, 'LIMIT', 0, TRIM_BATCH)
    for _, did in ipairs(old) do
      call('DEL', P .. 'wh:d:' .. did)
      call('ZREM', K_WH_DEAD, did)
    end
    dropped = #old
  end
  if cap then
    local over = call('ZCARD', K_WH_DEAD) - cap
    if over > 0 then
      local ids = call('ZRANGE', K_WH_DEAD, 0, math.min(over, TRIM_BATCH) - 1)
      for _, did in ipairs(ids) do
        call('DEL', P .. 'wh:d:' .. did)
        call('ZREM', K_WH_DEAD, did)
      end
      dropped = dropped + #ids
    end
  end
  return dropped
end
