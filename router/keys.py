"""Every Redis key Switchboard uses is built here, and only here.

All keys of one tenant share the hash tag `{tenant}`, so every script touches a
single cluster slot. Braces appear nowhere else in key names; ids are validated
(see `ids.py`) so they cannot smuggle one in.

Lua scripts receive KEYS[1] = `anchor` and build the same names from its
prefix (see `scripts/lib/core.lua`); `docs/architecture.md` lists them all.
Keep the two in step.
"""

from __future__ import annotations

from .ids import validate_id

ROOT = "sb"


class TenantKeys:
    """Key names of one tenant."""

    __slots__ = ("prefix", "tenant")

    def __init__(self, tenant: str) -> None:
        self.tenant = validate_id(tenant, "tenant")
        self.prefix = f"{ROOT}:{{{tenant}}}:"

    # -- tenant-wide -------------------------------------------------------
    @property
    def anchor(self) -> str:
        """KEYS[1] of every script: the tenant's meta hash (routing settings)."""
        return self.prefix + "meta"

    @property
    def events(self) -> str:
        """The tenant's event stream."""
        return self.prefix + "events"

    @property
    def offers_channel(self) -> str:
        """Shard channel: each new offer publishes its agent id (wakes long polls)."""
        return self.prefix + "offers"

    @property
    def config(self) -> str:
        """Hash {version, source, text}: the config file last applied by a reload."""
        return self.prefix + "config"

    @property
    def config_channel(self) -> str:
        """Shard channel: a reload publishes the new config version here."""
        return self.prefix + "config:changed"

    @property
    def timers(self) -> str:
        """Sorted set of due timers: member `<kind>|<id>`, score = due ms."""
        return self.prefix + "timers"

    @property
    def agents(self) -> str:
        """Set of all agent ids."""
        return self.prefix + "agents"

    @property
    def subqueues(self) -> str:
        """Hash `<queue>~<sig>` -> `<queue>|<skill>=<level>,...`: sub-queues created so far."""
        return self.prefix + "subqueues"

    @property
    def pools(self) -> str:
        """Set of the pools the config defines."""
        return self.prefix + "pools"

    @property
    def queues(self) -> str:
        """Set of every queue id a config has defined, so removed ones can be found."""
        return self.prefix + "queues"

    @property
    def pools_closed(self) -> str:
        """Set of pools whose gate is closed."""
        return self.prefix + "pools:closed"

    def vendor_day(self, vendor: str, day: int) -> str:
        """Contacts offered to the vendor's agents on its local day `day` (days
        since 1970-01-01) and not handed back: its volume, and max_per_day."""
        return f"{self.prefix}vd:{vendor}:{day}"

    def vendor_hour(self, vendor: str, hour: int) -> str:
        """The same per local hour (hours since the epoch), for max_per_hour."""
        return f"{self.prefix}vh:{vendor}:{hour}"

    def vendor_declines(self, vendor: str) -> str:
        """Set of contacts whose offer to this vendor timed out: skipped by it."""
        return self.prefix + "vdc:" + vendor

    @property
    def vendor_fails(self) -> str:
        """Hash vendor -> offers to it that timed out in a row."""
        return self.prefix + "vfail"

    def pool_causes(self, pool: str) -> str:
        """Set of the causes keeping a pool closed (admin, paused, hours, failing)."""
        return self.prefix + "pc:" + pool

    @property
    def vendor_config(self) -> str:
        """Hash read by routing: `pool:<pool>` -> vendor, `cap:<vendor>` -> its
        max_concurrent, `lanes:<vendor>` -> the lanes of its pools (`q:ch,...`)."""
        return self.prefix + "vend"

    @property
    def vendor_load(self) -> str:
        """Hash vendor -> contacts its agents hold now (reserved, assigned, wrap-up)."""
        return self.prefix + "vload"

    # -- contacts ----------------------------------------------------------
    def contact(self, contact_id: str) -> str:
        return self.prefix + "c:" + contact_id

    def declined(self, contact_id: str) -> str:
        """Set of agents that rejected or let expire an offer of this contact."""
        return self.prefix + "dc:" + contact_id

    def customer_last_agent(self, customer_digest: str) -> str:
        """String: the agent who last completed a contact of this customer."""
        return self.prefix + "cl:" + customer_digest

    def customer_contacts(self, identity_digest: str) -> str:
        """Set of the contacts of one customer identity (the `cust` digest of its id, or
        the digest of its email or phone, see lib/customers.lua): what an erasure
        (DELETE /v1/customers/{id}) finds and clears."""
        return self.prefix + "cx:" + identity_digest

    @property
    def privacy_secret(self) -> str:
        """String: the tenant's random secret behind customer pseudonyms (router/privacy.py)."""
        return self.prefix + "privacy:secret"

    @property
    def audit(self) -> str:
        """Stream: reads of personal data by outsourced pools, and erasures (router/audit.py)."""
        return self.prefix + "audit"

    def idempotency(self, key_digest: str) -> str:
        return self.prefix + "idem:" + key_digest

    def timeline(self, contact_id: str) -> str:
        """List of a conversation's follow-ups (newest first, capped), JSON entries."""
        return self.prefix + "tl:" + contact_id

    def thread(self, digest: str) -> str:
        """String: the contact of a conversation key (chat session, customer handle,
        email Message-ID). Listed in the contact's `threads` field; expires with it."""
        return self.prefix + "th:" + digest

    def inbound_event(self, digest: str) -> str:
        """String: a provider event already processed (its contact id, or '')."""
        return self.prefix + "ev:" + digest

    @property
    def ignored(self) -> str:
        """Hash `<channel>:<reason>` -> count of inbound items recorded, not routed."""
        return self.prefix + "ignored"

    # -- live metrics (router/metrics; written by scripts/metrics_apply.lua) ----
    def metrics_bucket(self, size: str, start_ms: int) -> str:
        """Hash `q:<queue>:<counter>` / `p:<pool>:<counter>` -> count, of the events
        whose `at` falls in [start_ms, start_ms + size). `size` is `1m` or `15m`."""
        return f"{self.prefix}m:{size}:{start_ms}"

    def metrics_index(self, size: str) -> str:
        """Sorted set of the bucket starts of one size (member = score = start ms)."""
        return f"{self.prefix}m:idx:{size}"

    @property
    def metrics_totals(self) -> str:
        """Hash: the same counters as the buckets, since the tenant began (Prometheus)."""
        return self.prefix + "m:tot"

    @property
    def metrics_available(self) -> str:
        """Hash agent -> `<pool>|<since ms>`: agents available now, and since when."""
        return self.prefix + "m:av"

    @property
    def metrics_alerts(self) -> str:
        """List of the latest SLA warnings and breaches (JSON, newest first, capped)."""
        return self.prefix + "m:alerts"

    # -- queues ------------------------------------------------------------
    def queue(self, queue_id: str) -> str:
        """Hash: the queue's routing config as the scripts need it."""
        return self.prefix + "q:" + queue_id

    def waiting(self, queue_id: str, channel: str, stage: int) -> str:
        """Sorted set of waiting contacts at one stage; score = arrival - priority*aging."""
        return f"{self.prefix}w:{queue_id}:{channel}:{stage}"

    def held(self, queue_id: str) -> str:
        """Sorted set of new contacts held while the queue is closed (when_closed =
        "wait"); score = the opening at which a `q|` timer queues them."""
        return self.prefix + "hold:" + queue_id

    def ready(self, queue_id: str, channel: str, entry_stage: int, pool: str) -> str:
        """Sorted set of agents ready for this queue/channel, entering at a stage, per pool."""
        return f"{self.prefix}r:{queue_id}:{channel}:{entry_stage}:{pool}"

    def staffed(self, queue_id: str, channel: str) -> str:
        """Set of agents available (busy or not) with this lane: the wait estimate's N."""
        return f"{self.prefix}sa:{queue_id}:{channel}"

    def staffed_pools(self, queue_id: str, channel: str) -> str:
        """Hash pool -> members of `staffed` in that pool: when_unstaffed stages read it."""
        return f"{self.prefix}sp:{queue_id}:{channel}"

    def queue_stats(self, queue_id: str) -> str:
        """Hash aht:<ch>, n:<ch>: recent handle time per slot of a configured queue."""
        return self.prefix + "qs:" + queue_id

    # -- agents ------------------------------------------------------------
    def agent(self, agent_id: str) -> str:
        return self.prefix + "a:" + agent_id

    def agent_lanes(self, agent_id: str) -> str:
        """Hash `<queue>:<channel>` -> `<entry_stage>:<rank>`: where the agent is eligible."""
        return self.prefix + "al:" + agent_id

    def agent_contacts(self, agent_id: str) -> str:
        """Set of contacts the agent holds (reserved, assigned or in wrap-up)."""
        return self.prefix + "ac:" + agent_id

    def agent_declined(self, agent_id: str) -> str:
        """Set of contacts this agent declined or let expire (mirror of `declined`)."""
        return self.prefix + "ad:" + agent_id

    def agent_waiting(self, agent_id: str) -> str:
        """Sorted set of contacts waiting for this agent only (preferred agent, transfer)."""
        return self.prefix + "aw:" + agent_id

    # -- API tokens --------------------------------------------------------
    @property
    def agent_tokens(self) -> str:
        """Hash token sha256 -> agent id: tokens bound to one agent, issued by an admin."""
        return self.prefix + "tokens"

    def tokens_of_agent(self, agent_id: str) -> str:
        """Set of the token digests issued for one agent (so they can be revoked)."""
        return self.prefix + "at:" + agent_id

    def rate_bucket(self, token_id: str) -> str:
        """Hash {tokens, ts}: one API token's request-rate bucket."""
        return self.prefix + "rl:" + token_id

    # -- outbound webhooks (router/webhooks; scripts webhook_*.lua) --------
    @property
    def webhook_subs(self) -> str:
        """Hash subscription id -> JSON {url, events, secret, created}: made by the admin API."""
        return self.prefix + "wh:subs"

    @property
    def webhook_active(self) -> str:
        """Set of subscription ids that have deliveries waiting (`webhook_due` not empty)."""
        return self.prefix + "wh:active"

    def webhook_due(self, sub_id: str) -> str:
        """Sorted set of one subscription's deliveries; score = next attempt (or lease end) ms."""
        return self.prefix + "wh:due:" + sub_id

    def webhook_delivery(self, delivery_id: str) -> str:
        """Hash: one delivery (`<event id>.<subscription>`): body, attempts, lease, last error."""
        return self.prefix + "wh:d:" + delivery_id

    @property
    def webhook_dead(self) -> str:
        """Sorted set of dead-lettered deliveries; score = when they died (ms)."""
        return self.prefix + "wh:dead"

    def webhook_dropped(self, sub_id: str) -> str:
        """Hash {count, first, last, first_at, last_at}: deliveries not stored because the
        subscription had `webhooks.max_pending` waiting (event ids, engine-clock ms)."""
        return self.prefix + "wh:drop:" + sub_id

    def stream_parked(self, group: str) -> str:
        """List of JSON {id, type, error, failures}, newest first, capped: stream entries
        a consumer group's handler kept failing on, acknowledged and set aside."""
        return self.prefix + "parked:" + group

    def pattern(self) -> str:
        """SCAN pattern matching every key of the tenant (tests, tenant deletion)."""
        return self.prefix + "*"
