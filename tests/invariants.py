"""Whole-tenant invariant checks, read straight from Redis.

Used after every step of the property-based test and at the end of the
concurrency and SIGKILL tests. Each check reads the raw structures (not the
engine's API), so a bug in the engine cannot hide itself.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from redis.asyncio import Redis

from router.config.model import TenantConfig
from router.keys import TenantKeys

WAITING = {"queued"}
HELD = {"reserved", "assigned", "wrap_up"}
FINISHED = {"completed", "abandoned"}


def _d(b: bytes | str) -> str:
    return b.decode() if isinstance(b, bytes) else b


@dataclass
class Snapshot:
    contacts: dict[str, dict[str, str]] = field(default_factory=dict)
    agents: dict[str, dict[str, str]] = field(default_factory=dict)
    lanes: dict[str, dict[str, str]] = field(default_factory=dict)
    held: dict[str, set[str]] = field(default_factory=dict)  # agent -> contacts
    sets: dict[str, dict[str, float]] = field(default_factory=dict)  # zset key suffix -> members
    declined: dict[str, set[str]] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    events: list[dict[str, str]] = field(default_factory=list)
    vend: dict[str, str] = field(default_factory=dict)  # the vendor routing hash
    vload: dict[str, int] = field(default_factory=dict)  # vendor -> contacts held
    # vendor -> {hour or day bucket: count} (vh: and vd: counters)
    vhour: dict[str, dict[int, int]] = field(default_factory=dict)
    vday: dict[str, dict[int, int]] = field(default_factory=dict)
    vdeclines: dict[str, set[str]] = field(default_factory=dict)  # vendor -> contacts
    timers: set[str] = field(default_factory=set)  # members of the timer set


async def snapshot(r: Redis, tenant: str) -> Snapshot:
    k = TenantKeys(tenant)
    p = k.prefix
    s = Snapshot()
    keys = [_d(x) async for x in r.scan_iter(match=k.pattern(), count=1000)]
    for key in keys:
        rest = key[len(p) :]
        kind = rest.split(":", 1)[0]
        if kind == "c":
            h = await r.hgetall(key)
            s.contacts[rest[2:]] = {_d(a): _d(b) for a, b in h.items() if a != b"data"}
        elif kind == "a":
            h = await r.hgetall(key)
            s.agents[rest[2:]] = {_d(a): _d(b) for a, b in h.items() if a != b"data"}
        elif kind == "al":
            h = await r.hgetall(key)
            s.lanes[rest[3:]] = {_d(a): _d(b) for a, b in h.items()}
        elif kind == "ac":
            s.held[rest[3:]] = {_d(m) for m in await r.smembers(key)}
        elif kind in ("w", "r", "aw"):
            s.sets[rest] = {_d(m): sc for m, sc in await r.zrange(key, 0, -1, withscores=True)}
        elif kind == "dc":
            s.declined[rest[3:]] = {_d(m) for m in await r.smembers(key)}
        elif kind in ("vh", "vd"):
            _, vid, bucket = rest.split(":")
            into = s.vhour if kind == "vh" else s.vday
            into.setdefault(vid, {})[int(bucket)] = int(_d(await r.get(key) or b"0"))
        elif kind == "vdc":
            s.vdeclines[rest[4:]] = {_d(m) for m in await r.smembers(key)}
    s.closed = {_d(m) for m in await r.smembers(k.pools_closed)}
    s.timers = {_d(m) for m in await r.zrange(k.timers, 0, -1)}
    s.vend = {_d(a): _d(b) for a, b in (await r.hgetall(k.vendor_config)).items()}
    s.vload = {_d(a): int(b) for a, b in (await r.hgetall(k.vendor_load)).items()}
    for _, fields in await r.xrange(k.events):
        s.events.append({_d(a): _d(b) for a, b in fields.items()})
    return s


def _ready_on(agent: dict[str, str], ch: str, exclusive: set[str]) -> bool:
    if agent.get("status") != "available":
        return False
    cap = int(agent.get(f"cap:{ch}", 0) or 0)
    load = int(agent.get(f"load:{ch}", 0) or 0)
    if load >= cap:
        return False
    if ch in exclusive:
        return int(agent.get("tload", 0)) == load
    return int(agent.get("xload", 0)) == 0


def check(s: Snapshot, tenant: TenantConfig, *, work_conserving: bool = True) -> None:
    """Raise AssertionError naming the first broken invariant."""
    exclusive = set(tenant.routing.exclusive_channels)
    # 1. every contact in exactly one place
    where: dict[str, list[str]] = defaultdict(list)
    for set_key, members in s.sets.items():
        if set_key.startswith(("w:", "aw:")):
            for m in members:
                where[m].append(set_key)
    holders: dict[str, list[str]] = defaultdict(list)
    for aid, held in s.held.items():
        for cid in held:
            holders[cid].append(aid)
    for cid, c in s.contacts.items():
        st = c["state"]
        places, owners = where.get(cid, []), holders.get(cid, [])
        if st in WAITING:
            assert places == [c["place"]], f"{cid} queued but in {places} (place {c['place']})"
            assert not owners, f"{cid} queued but held by {owners}"
        elif st in HELD:
            assert not places, f"{cid} {st} but waiting in {places}"
            assert owners == [c["agent"]], f"{cid} {st} for {c['agent']} but held by {owners}"
        elif st in FINISHED:
            assert not places and not owners, f"{cid} {st} but still in {places} {owners}"
        else:
            raise AssertionError(f"{cid} in transient state {st}")
    for cid in list(where) + list(holders):
        assert cid in s.contacts, f"{cid} is in a set but has no record"
    # 2. capacity and load accounting
    for aid, a in s.agents.items():
        held = s.held.get(aid, set())
        per_ch = Counter(s.contacts[c]["channel"] for c in held)
        for key, val in a.items():
            if key.startswith("load:"):
                ch = key[5:]
                assert int(val) == per_ch.get(ch, 0), f"{aid} load:{ch}={val} but holds {per_ch}"
        for ch, n in per_ch.items():
            cap = int(a.get(f"cap:{ch}", 0) or 0)
            # Only a capacity cut can leave accepted work above capacity, and it
            # returns every pending offer on that channel: no offer beyond capacity.
            offers = sum(
                1
                for c in held
                if s.contacts[c]["channel"] == ch and s.contacts[c]["state"] == "reserved"
            )
            assert n <= cap or offers == 0, (
                f"{aid} over capacity on {ch}: {n}/{cap} with {offers} offers"
            )
        assert int(a.get("tload", 0)) == len(held), f"{aid} tload {a.get('tload')} != {len(held)}"
        xl = sum(n for ch, n in per_ch.items() if ch in exclusive)
        assert int(a.get("xload", 0)) == xl, f"{aid} xload {a.get('xload')} != {xl}"
        if xl:
            assert len(held) == xl, f"{aid} holds an exclusive-channel contact alongside others"
    # 3. ready sets hold exactly the ready agents, with the right entry stage
    expected_ready: set[str] = set()
    for aid, lanes in s.lanes.items():
        a = s.agents[aid]
        for lane, v in lanes.items():
            ch = lane.rsplit(":", 1)[1]
            e = v.split(":")[0]
            if _ready_on(a, ch, exclusive):
                expected_ready.add(f"r:{lane}:{e}:{a['pool']}|{aid}")
    actual_ready = {f"{k}|{m}" for k, ms in s.sets.items() if k.startswith("r:") for m in ms}
    assert actual_ready == expected_ready, (
        f"ready sets wrong: extra {actual_ready - expected_ready}, "
        f"missing {expected_ready - actual_ready}"
    )
    # ... and each is ranked by its queue's strategy key
    for key, members in s.sets.items():
        if not key.startswith("r:"):
            continue
        _, q, ch, _, _ = key.split(":")
        strategy = tenant.queues[q.split("~")[0]].strategy.value
        for aid, score in members.items():
            a = s.agents[aid]
            idle = int(a["idle"])
            rank = int(s.lanes[aid][f"{q}:{ch}"].split(":")[1])
            cap, load = int(a[f"cap:{ch}"]), int(a.get(f"load:{ch}", 0) or 0)
            want = {
                "longest_idle": idle,
                "least_occupied": (100 * load // cap) * 10**13 + idle,
                "highest_proficiency": (99 - rank) * 10**13 + idle,
            }[strategy]
            assert score == want, f"{aid} ranked {score} in {key}, want {want} ({strategy})"
    # 4. queue order: a waiting contact's score is created - priority * aging of its queue
    for cid, c in s.contacts.items():
        if c["state"] in WAITING:
            q = tenant.queues[c["queue"].split("~")[0]]
            want = int(c["created"]) - int(c["prio"]) * round(q.aging_s * 1000)
            assert float(c["score"]) == want, f"{cid} score {c['score']} != {want}"
            assert s.sets[c["place"]][cid] == want, f"{cid} sorted by a stale score"
    # 6. vendor caps: each vendor's counter is the contacts its agents hold, and
    # routing never offered beyond max_concurrent (only a lowered cap leaves it above)
    held_by: Counter[str] = Counter()
    for cid, c in s.contacts.items():
        if c["state"] in HELD and c.get("vend"):
            held_by[c["vend"]] += 1
            pv = s.vend.get(f"pool:{c['pool']}")
            assert pv is None or pv == c["vend"], f"{cid} charged to {c['vend']}, pool of {pv}"
        else:
            assert not c.get("vend"), f"{cid} {c['state']} still charged to {c.get('vend')}"
    for vid in set(held_by) | set(s.vload):
        assert s.vload.get(vid, 0) == held_by[vid], (
            f"vendor {vid} load {s.vload.get(vid, 0)} != {held_by[vid]} held"
        )
    full = set()
    for f, vid in s.vend.items():
        if f.startswith("pool:"):
            cap = int(s.vend.get(f"cap:{vid}", 0) or 0)
            if cap and s.vload.get(vid, 0) >= cap:
                assert s.vload[vid] == cap, f"vendor {vid} holds {s.vload[vid]} > cap {cap}"
                full.add(f[5:])
            # max_per_hour / max_per_day: no bucket above its cap; the newest bucket
            # at its cap makes the vendor full (an older one may be the current one
            # only if nothing was offered since, which then changes nothing)
            for name, counts in (("hcap", s.vhour), ("dcap", s.vday)):
                pcap = int(s.vend.get(f"{name}:{vid}", 0) or 0)
                mine = counts.get(vid, {})
                if pcap and mine:
                    assert max(mine.values()) <= pcap, f"vendor {vid} {name} {mine} > {pcap}"
                    if mine[max(mine)] >= pcap:
                        full.add(f[5:])
    # vendor declines: a contact's `dv` and the vendors' vdc: sets agree
    for vid, members in s.vdeclines.items():
        for cid in members:
            c = s.contacts.get(cid)
            assert c is not None and f",{vid}," in c.get("dv", ""), f"vdc:{vid} has {cid}"
    for cid, c in s.contacts.items():
        for vid in filter(None, c.get("dv", "").split(",")):
            assert c["state"] not in ("completed", "abandoned"), f"finished {cid} keeps dv"
            assert cid in s.vdeclines.get(vid, set()), f"{cid} declined by {vid}, not in vdc"
    # 5. work conservation: nobody waits while an eligible agent is ready for it
    if work_conserving:
        for cid, c in s.contacts.items():
            if c["state"] not in WAITING or not c["place"].startswith("w:"):
                continue
            stage = int(c["stage"])
            for key, members in s.sets.items():
                if not key.startswith("r:"):
                    continue
                _, q, ch, e, pool = key.split(":")
                if q != c["queue"] or ch != c["channel"] or int(e) > stage or pool in s.closed:
                    continue
                if pool in full:
                    continue
                pv = s.vend.get(f"pool:{pool}")
                if pv and f",{pv}," in c.get("dv", ""):
                    continue  # its offer to this vendor timed out: it moved on
                if pv and f"v|{pv}" in s.timers:
                    continue  # the vendor's lanes are dispatched on the next timer run
                free = set(members) - s.declined.get(cid, set())
                assert not free, f"{cid} waits at stage {stage} while {free} are ready ({key})"
        for key, members in s.sets.items():
            if key.startswith("aw:"):
                aid = key[3:]
                a = s.agents.get(aid)
                for cid in members:
                    ch = s.contacts[cid]["channel"]
                    # data residency: a pool not allowed for the contact's region
                    # (a reload took it away) never gets it, ready or not
                    region = s.contacts[cid].get("region", "")
                    rg = s.vend.get(f"rg:{a['pool']}", "") if a else ""
                    allowed = not region or rg == "*" or f",{region}," in rg
                    assert not (
                        a
                        and allowed
                        and a["pool"] not in s.closed
                        and a["pool"] not in full
                        and _ready_on(a, ch, exclusive)
                    ), f"{cid} waits for {aid}, who is ready"


# Event replay: each contact event is exactly one transition from a legal state.
_TRANSITIONS: dict[str, tuple[set[str | None], str | None]] = {
    "contact.received": ({None}, "received"),
    "contact.queued": ({"received"}, "queued"),
    "contact.reserved": ({"queued"}, "reserved"),
    "contact.reservation_rejected": ({"reserved"}, "queued"),
    "contact.reservation_expired": ({"reserved"}, "queued"),
    "contact.assigned": ({"reserved"}, "assigned"),
    "contact.wrap_up": ({"assigned"}, "wrap_up"),
    "contact.completed": ({"assigned", "wrap_up"}, "completed"),
    "contact.abandoned": ({"queued", "reserved"}, "abandoned"),
    "contact.transferred": ({"queued", "reserved", "assigned"}, "queued"),
    "contact.stage_advanced": ({"queued", "reserved", "assigned", "wrap_up"}, None),
}


def check_events(s: Snapshot) -> None:
    """Replaying the stream must give every contact's and agent's current state."""
    state: dict[str, str | None] = {}
    agent_of: dict[str, str] = {}
    status: dict[str, str] = {}
    for ev in s.events:
        t = ev["type"]
        if t in _TRANSITIONS:
            cid = ev["contact"]
            allowed, to = _TRANSITIONS[t]
            cur = state.get(cid)
            assert cur in allowed, f"event {t} for {cid} in state {cur}"
            if to is not None:
                state[cid] = to
            if t == "contact.reserved":
                agent_of[cid] = ev["agent"]
        elif t == "agent.status_changed":
            assert status.get(ev["agent"], "offline") == ev["from"], (
                f"status event out of order {ev}"
            )
            status[ev["agent"]] = ev["status"]
    for cid, c in s.contacts.items():
        assert state.get(cid) == c["state"], (
            f"{cid}: events say {state.get(cid)}, Redis {c['state']}"
        )
        if c["state"] in HELD:
            assert agent_of.get(cid) == c["agent"], f"{cid}: events say agent {agent_of.get(cid)}"
    for aid, a in s.agents.items():
        assert status.get(aid, "offline") == a["status"], f"{aid}: events say {status.get(aid)}"


async def assert_invariants(
    r: Redis, tenant: TenantConfig, *, work_conserving: bool = True, events: bool = True
) -> Snapshot:
    s = await snapshot(r, tenant.id)
    check(s, tenant, work_conserving=work_conserving)
    if events:
        check_events(s)
    return s
