"""An engine process for the multi-process tests: ingests contacts, acts as some
agents' desktops, and runs the timer loop. Real time, real Redis.

    python -m tests.procs.worker URL CONFIG_TOML WORKER_ID N_WORKERS N_CONTACTS SEED STOP_FILE

Prints one JSON line per created contact id (`{"created": id}`) as it goes.
Keeps acting for its agents until STOP_FILE exists (the test creates it once
every contact is finished), so no process leaves work stranded early.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path

from redis.asyncio import Redis

from router.clock import RealClock
from router.config import load_config
from router.engine import Engine
from router.errors import SwitchboardError
from router.model import NewContact
from router.timers import TimerLoop


async def act_for_agents(engine: Engine, agents: list[str], rng: random.Random) -> None:
    r = engine.redis
    for aid in agents:
        for raw in await r.smembers(engine.keys.agent_contacts(aid)):
            cid = raw.decode()
            state = await r.hget(engine.keys.contact(cid), "state")
            try:
                if state == b"reserved":
                    if rng.random() < 0.1:
                        await engine.reject(cid, aid, "busy")
                    else:
                        await engine.accept(cid, aid)
                elif state == b"assigned":
                    await engine.complete(cid, aid, "ok", skip_wrap_up=rng.random() < 0.5)
                elif state == b"wrap_up":
                    await engine.finish_wrap_up(cid, aid)
            except SwitchboardError:
                pass  # raced with a timer or another process: fine, state is unchanged
        if rng.random() < 0.02:
            try:
                await engine.set_agent_status(aid, "away", "break")
                await engine.set_agent_status(aid, "available")
            except SwitchboardError:
                pass


async def main(argv: list[str]) -> None:
    url, cfg_path, wid, nw, n, seed, stop_file = argv
    worker, workers, total = int(wid), int(nw), int(n)
    rng = random.Random(int(seed) * 1000 + worker)
    cfg = load_config(cfg_path)
    tenant = next(iter(cfg.tenants.values()))
    redis = Redis.from_url(url, max_connections=16)
    engine = Engine(redis, tenant, RealClock())
    agents = [a for a in await engine.agent_ids() if int(a[1:]) % workers == worker]
    stop = asyncio.Event()
    timers = asyncio.create_task(TimerLoop([engine], engine.clock, poll_s=0.05).run(stop))
    queues = [(q.id, q.channels[0]) for q in tenant.queues.values()]
    mine: list[str] = []
    created = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for _ in range(min(20, total - created)):
            q, ch = rng.choice(queues)
            res = await engine.create_contact(
                NewContact(channel=ch, queue=q, priority=rng.randint(0, 2))
            )
            mine.append(res.contact_id)
            created += 1
            print(json.dumps({"created": res.contact_id}), flush=True)
            if rng.random() < 0.05:
                try:
                    await engine.abandon(rng.choice(mine))
                except SwitchboardError:
                    pass
        await act_for_agents(engine, agents, rng)
        if created == total and Path(stop_file).exists():
            break
        await asyncio.sleep(0.01)
    stop.set()
    await timers
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
