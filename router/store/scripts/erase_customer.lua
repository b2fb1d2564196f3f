--[[
erase_customer: erase a customer's personal data from its contacts (a GDPR
erasure, DELETE /v1/customers/{id}). The contacts are found in the customer
index sets `cx:<digest>` (lib/customers.lua) of the given identities. Each
contact keeps its routing state, times, queue, agent and pool, so the
anonymous metrics stay; it loses its customer, subject, preview, attributes
and external id (its record's `data`), its conversation timeline and its
thread keys, and its customer digest. The customer's last-agent key `cl:` and
the index sets go too. At most ARGV[3] index entries per run (each contact
whole; ids of expired contacts count too, so a run stays short): the caller
runs it again while `left` > 0. A contact erased once (field `erased`) is
skipped, so one found under two identities counts once.

KEYS[1]  sb:{tenant}:meta
ARGV[1]  now (ms)
ARGV[2]  erasure id (names this erasure in events and the audit; no personal data)
ARGV[3]  at most this many contacts in this run
ARGV[4]  the `cust` digest of the customer id ('' when erased by email or phone only)
ARGV[5..] index digests to read (the id digest, email and phone digests)

Returns  { contacts erased in this run, contacts left in the index sets }
Errors   SBINVALID (bad batch size)
Events   contact.erased { erasure } per contact erased
]]

--!include lib/base.lua

local erasure, batch, cust = ARGV[2], tonumber(ARGV[3]), ARGV[4]
if not batch or batch < 1 then raise('SBINVALID', 'batch must be a number >= 1') end

-- the record minus personal data; empty maps are dropped, not re-packed as arrays
local function scrubbed(data)
  local ok, record = pcall(cmsgpack.unpack, data)
  if not ok or type(record) ~= 'table' then return nil end
  record.customer, record.subject, record.preview = nil, nil, nil
  record.attributes, record.external_id = nil, nil
  for k, v in pairs(record) do
    if type(v) == 'table' and next(v) == nil then record[k] = nil end
  end
  record.erased = NOW
  return cmsgpack.pack(record)
end

local done = 0
local popped = 0 -- every id popped counts against the batch: expired ones too
local left = 0
for i = 5, #ARGV do
  local ix = P .. 'cx:' .. ARGV[i]
  while popped < batch do
    local cid = call('SPOP', ix)
    if not cid then break end
    popped = popped + 1
    local ckey = P .. 'c:' .. cid
    -- a contact found under two identities (id and email), or erased before,
    -- is erased once
    if call('EXISTS', ckey) == 1 and call('HEXISTS', ckey, 'erased') == 0 then
      local data = call('HGET', ckey, 'data')
      local clean = data and scrubbed(data) or cmsgpack.pack({ erased = NOW })
      call('HSET', ckey, 'data', clean, 'cust', '', 'erased', erasure)
      call('DEL', P .. 'tl:' .. cid)
      for k in string.gmatch(str(call('HGET', ckey, 'threads')), '[^,]+') do
        call('DEL', P .. k)
      end
      call('HDEL', ckey, 'threads')
      local c = load_contact(cid)
      emit('contact.erased', cfields(c, { 'erasure', erasure }))
      done = done + 1
    end
  end
  left = left + call('SCARD', ix)
end
if left == 0 and cust ~= '' then call('DEL', P .. 'cl:' .. cust) end
return { done, left }
