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

    # -- contacts ----------------------------------------------------------
    def contact(self, contact_id: str) -> str:
        return self.prefix + "c:" + contact_id

    def declined(self, contact_id: str) -> str:
        """Set of agents that rejected or let expire an offer of this contact."""
        return self.prefix + "dc:" + contact_id

    def customer_last_agent(self, customer_digest: str) -> str:
        """String: the agent who last completed a contact of this customer."""
        return self.prefix + "cl:" + customer_digest

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

    # -- queues ------------------------------------------------------------
    def queue(self, queue_id: str) -> str:
        """Hash: the queue's routing config as the scripts need it."""
        return self.prefix + "q:" + queue_id

    def waiting(self, queue_id: str, channel: str, stage: int) -> str:
        """Sorted set of waiting contacts at one stage; score = created - priority*aging."""
        return f"{self.prefix}w:{queue_id}:{channel}:{stage}"

    def ready(self, queue_id: str, channel: str, entry_stage: int, pool: str) -> str:
        """Sorted set of agents ready for this queue/channel, entering at a stage, per pool."""
        return f"{self.prefix}r:{queue_id}:{channel}:{entry_stage}:{pool}"

    def staffed(self, queue_id: str, channel: str) -> str:
        """Set of agents available (busy or not) with this lane: the wait estimate's N."""
        return f"{self.prefix}sa:{queue_id}:{channel}"

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

    def pattern(self) -> str:
        """SCAN pattern matching every key of the tenant (tests, tenant deletion)."""
        return self.prefix + "*"
