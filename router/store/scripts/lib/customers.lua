--[[
lib/customers.lua: the customer index that erasure (DELETE /v1/customers/{id},
erase_customer.lua) reads. Each identity of a contact's customer names a set
`cx:<digest>` of its contacts:
  - its id: the engine's `cust` digest (sha256 of the id, 32 hex), as in `cl:`;
  - its email: sha1hex('email:' .. lowercase email);
  - its phone: sha1hex('phone:' .. its digits), for 7 digits or more.
router/api/customers.py computes the same digests. A set lives CX_EXTRA_MS
beyond the retention of finished contacts after its customer's last contact.
Needs lib/base.lua.
]]

local CX_EXTRA_MS = 30 * 86400000

local function customer_digests(cust, data)
  local out = {}
  if cust ~= '' then out[#out + 1] = cust end
  local ok, record = pcall(cmsgpack.unpack, data)
  if not ok or type(record) ~= 'table' or type(record.customer) ~= 'table' then return out end
  local email, phone = record.customer.email, record.customer.phone
  if type(email) == 'string' and email ~= '' then
    out[#out + 1] = redis.sha1hex('email:' .. string.lower(email))
  end
  if type(phone) == 'string' then
    local digits = string.gsub(phone, '%D', '')
    if #digits >= 7 then out[#out + 1] = redis.sha1hex('phone:' .. digits) end
  end
  return out
end

local function index_customer(cid, cust, data)
  for _, d in ipairs(customer_digests(cust, data)) do
    local k = P .. 'cx:' .. d
    call('SADD', k, cid)
    call('PEXPIRE', k, meta().ret + CX_EXTRA_MS)
  end
end
