--[[
lib/dispatch.lua: bulk matching of a lane's waiting contacts with ready agents.
Included after lib/core.lua.
]]

-- For each lane, offer its waiting contacts (best stage heads first) until no
-- ready agent fits or `limit` offers were made. Returns the number of offers.
local function dispatch_lanes(lanes, limit)
  local made = 0
  for lane in string.gmatch(lanes, '[^,]+') do
    local q = string.match(lane, '^(.+):[^:]+$')
    local qc = qcfg(q)
    if qc then
      local k = qc.nst - 1
      local skip = 0
      while k >= 0 and made < limit do
        local items = call('ZRANGE', P .. 'w:' .. lane .. ':' .. k, skip, skip)
        if #items == 0 then
          k = k - 1
          skip = 0
        else
          local c = load_contact(items[1])
          if route_contact(c) then
            made = made + 1
          else
            -- nobody for this one: if nobody (agent or vendor) declined it, nobody
            -- is ready at this stage at all, so the rest of the stage can wait
            skip = skip + 1
            if skip >= DECLINE_SCAN
                or (c.dv == '' and call('EXISTS', P .. 'dc:' .. c.id) == 0) then
              k = k - 1
              skip = 0
            end
          end
        end
      end
    end
  end
  return made
end
