--[[
lib/customers.lua: the customer index that erasure (DELETE /v1/customers/{id},
erase_customer.lua) reads. Each identity of a contact's customer names a set
`cx:<digest>` of its contacts:
  - its id: the engine's `cust` digest (sha256 of the id, 32 hex), as in `cl:`;
  - its email: sha1hex('email:' .. lowercase email);
  - its phone: sha1hex('phone:' .. its digits), for 7 digits or more.
  - its social handle: sha1hex('handle:' .. lowercase handle);
The email and phone digests are computed by the engine (router/privacy.py
contact_digests) and passed in, so creating a contact never unpacks its record;
router/api/customers.py computes the same digests to find the sets. A set lives CX_EXTRA_MS
beyond the retention of finished contacts after its customer's last contact.
Needs lib/base.lua.
]]

local CX_EXTRA_MS = 30 * 86400000

local function index_customer(cid, cust, digests)
  local ds = cust ~= '' and { cust } or {}
  for d in string.gmatch(digests, '[^,]+') do ds[#ds + 1] = d end
  for _, d in ipairs(ds) do
    local k = P .. 'cx:' .. d
    call('SADD', k, cid)
    call('PEXPIRE', k, meta().ret + CX_EXTRA_MS)
  end
end
