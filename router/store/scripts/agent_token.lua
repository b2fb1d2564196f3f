--[[
agent_token: issue an API token bound to one agent, or revoke all of an agent's.
Only the token's SHA-256 is stored. Audited: each change writes its event.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  agent id
ARGV[3]  token digest (sha256 hex) to issue, or '' to revoke every token of the agent

Returns  { number of the agent's tokens after the change }
Errors   SBNOAGENT (issuing only: revoking for a deleted agent is allowed)
Events   agent.token_issued { agent, token (first 8 hex of the digest) } |
         agent.tokens_revoked { agent, count }
]]

--!include lib/base.lua

local aid, digest = ARGV[2], ARGV[3]
local K_TOKENS, K_MINE = P .. 'tokens', P .. 'at:' .. aid
if digest ~= '' then
  must_agent(aid)
  call('HSET', K_TOKENS, digest, aid)
  call('SADD', K_MINE, digest)
  emit('agent.token_issued', { 'agent', aid, 'token', string.sub(digest, 1, 8) })
  return { call('SCARD', K_MINE) }
end
local mine = call('SMEMBERS', K_MINE)
for i = 1, #mine do call('HDEL', K_TOKENS, mine[i]) end
call('DEL', K_MINE)
emit('agent.tokens_revoked', { 'agent', aid, 'count', #mine })
return { 0 }
