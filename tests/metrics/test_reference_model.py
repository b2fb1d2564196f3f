"""The consumer script against a small Python model of the definitions, on random
event sequences: transfers (once per contact per queue), re-assignments, reopened
contacts, and available time split over minute and 15-minute buckets."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from router.clock import VirtualClock
from router.engine import Engine
from router.metrics.consumer import drain

from ..conftest import EngineFactory
from .conftest import METRICS_BODY, T0

QUEUES = ("sales", "support")
POOLS = ("inhouse", "near")
THRESHOLD = {"sales": 20_000, "support": 30_000}
GRACE = 5_000
MIN, QTR = 60_000, 900_000


class Model:
    """What docs/metrics.md says the counters are, written plainly."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[str, int], Counter[str]] = {}
        self.offered_in: dict[str, set[str]] = {}
        self.answered_in: dict[str, set[str]] = {}
        self.available: dict[str, tuple[str, int]] = {}

    def add(self, at: int, field: str, n: int) -> None:
        for size, label in ((MIN, "1m"), (QTR, "15m")):
            self.buckets.setdefault((label, at - at % size), Counter())[field] += n

    def span(self, field: str, start: int, end: int) -> None:
        for size, label in ((MIN, "1m"), (QTR, "15m")):
            t = start
            while t < end:
                b = t - t % size
                e = min(b + size, end)
                self.buckets.setdefault((label, b), Counter())[field] += e - t
                t = e

    def apply(self, e: dict[str, Any]) -> None:
        kind, at, q, c = e["type"], e["at"], e.get("queue"), e.get("contact")
        if kind in ("contact.received", "contact.reopened"):
            self.offered_in[c] = {q}
            self.answered_in[c] = set()
            self.add(at, f"q:{q}:off", 1)
        elif kind == "contact.transferred":
            if e["from_state"] == "assigned":
                self.answered_in[c].add(e["from_queue"])
            if not e["to_agent"] and q not in self.offered_in[c]:
                self.offered_in[c].add(q)
                self.add(at, f"q:{q}:off", 1)
        elif kind == "contact.assigned":
            within = int(e["wait_ms"] <= THRESHOLD[q])
            if q not in self.answered_in[c]:
                for name, n in (("ans", 1), ("ans_t", within), ("wait", e["wait_ms"])):
                    self.add(at, f"q:{q}:{name}", n)
            for name, n in (("ans", 1), ("ans_t", within), ("wait", e["wait_ms"])):
                self.add(at, f"p:{e['pool']}:{name}", n)
        elif kind == "contact.abandoned":
            self.add(at, f"q:{q}:abn", 1)
            self.add(at, f"q:{q}:abn_g", int(e["wait_ms"] <= GRACE))
            self.add(at, f"q:{q}:abn.{e.get('stage', 0)}", 1)
        elif kind == "agent.status_changed":
            a = e["agent"]
            if e["status"] == "available" and a not in self.available:
                self.available[a] = (e["pool"], at)
            elif e["status"] != "available" and a in self.available:
                pool, since = self.available.pop(a)
                self.span(f"p:{pool}:avail", since, at)


def _events(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """A plausible random history: contacts move between queues and agents, agents
    come and go; `at` only moves forward (seconds to minutes at a time)."""
    at = T0
    contacts: dict[str, str] = {}  # contact -> queue
    agents = {f"a{i}": rng.choice(POOLS) for i in range(4)}
    status = dict.fromkeys(agents, "offline")
    out: list[dict[str, Any]] = []
    for i in range(n):
        at += rng.choice([0, 500, 5_000, 40_000, 200_000])
        roll = rng.random()
        base = {"v": "1", "at": at, "channel": "voice"}
        if roll < 0.25 or not contacts:
            cid, q = f"c{i}", rng.choice(QUEUES)
            contacts[cid] = q
            out.append({**base, "type": "contact.received", "contact": cid, "queue": q})
            continue
        cid = rng.choice(sorted(contacts))
        q = contacts[cid]
        if roll < 0.4:
            to_agent = rng.choice(["", "", "a1"])
            new_q = q if to_agent else rng.choice(QUEUES)
            contacts[cid] = new_q
            out.append(
                {
                    **base,
                    "type": "contact.transferred",
                    "contact": cid,
                    "queue": new_q,
                    "from_queue": q,
                    "to_agent": to_agent,
                    "from_state": rng.choice(["queued", "assigned"]),
                }
            )
        elif roll < 0.6:
            aid = rng.choice(sorted(agents))
            out.append(
                {
                    **base,
                    "type": "contact.assigned",
                    "contact": cid,
                    "queue": q,
                    "agent": aid,
                    "pool": agents[aid],
                    "wait_ms": rng.choice([0, 10_000, 25_000, 90_000]),
                }
            )
        elif roll < 0.7:
            out.append(
                {
                    **base,
                    "type": "contact.abandoned",
                    "contact": cid,
                    "queue": q,
                    "wait_ms": rng.choice([0, 3_000, 8_000, 60_000]),
                }
            )
        elif roll < 0.75:
            out.append({**base, "type": "contact.reopened", "contact": cid, "queue": q})
        else:
            aid = rng.choice(sorted(agents))
            new = rng.choice(["available", "away", "offline"])
            if new == status[aid]:
                continue
            out.append(
                {
                    **base,
                    "type": "agent.status_changed",
                    "agent": aid,
                    "pool": agents[aid],
                    "status": new,
                    "from": status[aid],
                }
            )
            status[aid] = new
    return out


async def _bucket_counts(engine: Engine) -> dict[tuple[str, int], Counter[str]]:
    out = {}
    for label in ("1m", "15m"):
        for raw in await engine.redis.zrange(engine.keys.metrics_index(label), 0, -1):
            start = int(raw)
            h = await engine.redis.hgetall(engine.keys.metrics_bucket(label, start))
            counts = Counter({k.decode(): int(v) for k, v in h.items() if int(v)})
            if counts:
                out[(label, start)] = counts
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_the_script_agrees_with_the_model(make_engine: EngineFactory, seed: int) -> None:
    rng = random.Random(seed)
    events = _events(rng, 400)
    end = events[-1]["at"]
    clock = VirtualClock(end)
    e = await make_engine(METRICS_BODY.replace("history_days = 2", "history_days = 30"), clock)
    model = Model()
    for ev in events:
        if ev["type"] == "contact.received":  # the contact's record, as create_contact writes it
            await e.redis.hset(e.keys.contact(ev["contact"]), "state", "queued")
        await e.redis.xadd(e.keys.events, {k: str(v) for k, v in ev.items()})
        model.apply(ev)
    await drain(e, batch=37)  # batches that cut across buckets and contacts
    got = await _bucket_counts(e)
    want = {
        k: Counter({f: n for f, n in c.items() if n})
        for k, c in model.buckets.items()
        if (k[0] == "15m" or k[1] >= end - end % MIN - 7_200_000) and any(c.values())
    }
    assert got == want
    av = {
        k.decode(): v.decode() for k, v in (await e.redis.hgetall(e.keys.metrics_available)).items()
    }
    assert av == {a: f"{p}|{since}" for a, (p, since) in model.available.items()}
