--[[
timers: apply due timers, in one bounded batch. Popping a timer and applying
it happen in one script, so a process dying between the two loses nothing,
and any number of processes may run this concurrently.

Timer members of sb:{tenant}:timers (score = due ms):
  o|<contact>  offer deadline: reserved -> queued (contact.reservation_expired)
  s|<contact>  next overflow stage opens (contact.stage_advanced)
  p|<contact>  wait for a named agent is over: back to its queue (contact.stage_advanced)
  w|<contact>  wrap-up time is over: wrap_up -> completed (contact.completed)
  h|<agent>    no heartbeat in time: the agent goes offline (agent.status_changed)
A timer whose condition no longer holds (the contact moved on) is dropped.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  batch size

Returns  { timers applied, due time of the next timer or '' }
Errors   SBINVALID (batch size)
]]

--!include lib/core.lua

local batch = tonumber(ARGV[2])
if not batch or batch < 1 then raise('SBINVALID', 'batch size must be a positive number') end
local due = call('ZRANGEBYSCORE', K_TIMERS, '-inf', NOW, 'LIMIT', 0, batch)

local function expire_offer(c)
  if c.state ~= 'reserved' or num(c.deadline, NOW + 1) > NOW then return end
  local a = load_agent(c.agent)
  if not a then return end
  requeue(c, a, 'contact.reservation_expired', 'timeout', true)
  route_contact(c)
  route_agent(a)
end

local function agent_wait_over(c)
  if c.state ~= 'queued' or string.sub(c.place, 1, 3) ~= 'aw:' then return end
  local from_agent = c.pref
  call('ZREM', P .. c.place, c.id)
  call('HSET', P .. 'c:' .. c.id, 'pref', '')
  c.pref = ''
  place_in_queue(c)
  emit('contact.stage_advanced', cfields(c, { 'from_stage', c.stage, 'reason', 'agent_wait_over',
    'from_agent', from_agent }))
  route_contact(c)
end

local function wrap_over(c)
  if c.state ~= 'wrap_up' then return end
  local a = load_agent(c.agent)
  complete_now(c, a, str(call('HGET', P .. 'c:' .. c.id, 'disposition')))
end

local function presence_lost(aid)
  local a = load_agent(aid)
  if not a or a.status == 'offline' then return end
  local seen = num(call('HGET', P .. 'a:' .. aid, 'seen'), 0)
  local timeout = meta().presence
  if timeout <= 0 or seen + timeout > NOW then return end
  set_status(a, 'offline', 'presence_timeout')
  release_reservations(a, 'agent_offline')
end

for i = 1, #due do
  local m = due[i]
  call('ZREM', K_TIMERS, m)
  local kind, id = string.sub(m, 1, 1), string.sub(m, 3)
  if kind == 'h' then
    presence_lost(id)
  else
    local c = load_contact(id)
    if c then
      if kind == 'o' then
        expire_offer(c)
      elseif kind == 's' then
        advance_stage(c)
      elseif kind == 'p' then
        agent_wait_over(c)
      elseif kind == 'w' then
        wrap_over(c)
      end
    end
  end
end
local nxt = call('ZRANGE', K_TIMERS, 0, 0, 'WITHSCORES')
return { #due, nxt[2] or '' }
