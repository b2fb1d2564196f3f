"""Metrics benchmarks: `python -m loadtests.metrics {consumer,sse,all}` (docs/benchmarks.md).

consumer   events per second that the metrics consumer (scripts/metrics_apply.lua)
           counts in ONE process, draining a stream of realistic contact cycles, against
           references measured in the same run on the same stream: a bare Lua script
           that only reads each batch (XREADGROUP NOACK, the consumer's own read: the
           same call shape with no counting), the same with a plain read and an XACK
           per batch, and a Python loop of XREADGROUP + XACK round trips.
sse        200 dashboards on GET /v1/metrics/stream of one `serve` process while
           contacts arrive: frames per second delivered, the server's CPU, and the lag
           from a snapshot's `at` to its arrival; against a bare aiohttp SSE server
           (same uvloop, one process) that sends a frame of the same size to 200
           streams once a second.

Each command starts a private embedded Valkey (AOF everysec) unless --redis-url is
given. Prints one JSON document on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
from redis.asyncio import Redis

from router.clock import RealClock
from router.config import load_config, load_config_text
from router.config.model import TenantConfig
from router.engine import Engine
from router.keys import TenantKeys
from router.metrics.consumer import apply_batch, apply_script
from router.model import NewContact

from .bench import log, machine_info, valkey_url

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.toml"
T0 = 1_700_000_100_000

BODY = """
[pools.inhouse]
kind = "inhouse"

[pools.near]
kind = "outsourced"
vendor = "near-co"
location = "nearshore"

[vendors.near-co]
name = "Near Co"
location = "nearshore"

[queues.sales]
channel = "voice"
pools = ["inhouse"]

[queues.support]
channel = "chat"
pools = ["inhouse", "near"]

[queues.email]
channel = "email"
pools = ["inhouse"]
"""

# The reference scripts: the consumer's read (NOACK, as it reads) with no counting;
# and the same with a plain read and an XACK of each batch.
BARE_LUA = """
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], 'bare', 'COUNT', ARGV[2], 'NOACK',
  'STREAMS', KEYS[1], '>')
if not r then return 0 end
return #r[1][2]
"""
BARE_ACK_LUA = """
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], 'bare', 'COUNT', ARGV[2], 'STREAMS',
  KEYS[1], '>')
if not r then return 0 end
local ids = {}
for i, e in ipairs(r[1][2]) do ids[i] = e[1] end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
return #ids
"""


def machine(code: str | None) -> dict[str, Any]:
    """machine_info, with the load at the start and an optional code label override."""
    out = machine_info()
    if code:
        out["code"] = code
    out["loadavg_1m_at_start"] = round(os.getloadavg()[0], 2)
    return out


# -- consumer ---------------------------------------------------------------------


def _cycle(rng: random.Random, i: int, at: int) -> Iterator[dict[str, Any]]:
    """The events of one contact's life, as the engine writes them (docs/events.md):
    received, queued, reserved, assigned, then completed or abandoned, and now and
    then an agent's status change."""
    queue = rng.choice(["sales", "support", "email"])
    pool = rng.choice(["inhouse", "inhouse", "near"])
    cid = f"c{i:012x}{rng.getrandbits(64):016x}"
    base = {"v": "1", "contact": cid, "queue": queue, "channel": "voice", "stage": "0",
            "priority": "0", "created": at}  # fmt: skip
    yield {"type": "contact.received", "at": at, **base, "requested_queue": queue}
    yield {"type": "contact.queued", "at": at, **base, "preferred_agent": ""}
    wait = rng.randrange(60_000)
    candidates = [{"agent": "a1", "pool": pool, "entry": 0, "score": at}]
    why = json.dumps(
        {"strategy": "longest_idle", "chosen": "a1", "at": at + wait, "candidates": candidates}
    )
    if rng.random() < 0.08:
        yield {"type": "contact.abandoned", "at": at + wait, **base, "agent": "", "pool": "",
               "reason": "customer_left", "wait_ms": wait, "from_state": "queued"}  # fmt: skip
        return
    yield {"type": "contact.reserved", "at": at + wait, **base, "agent": "a1", "pool": pool,
           "deadline": at + wait + 15_000, "wait_ms": wait, "why": why}  # fmt: skip
    yield {"type": "contact.assigned", "at": at + wait, **base, "agent": "a1", "pool": pool,
           "wait_ms": wait, "ring_ms": 0}  # fmt: skip
    talk = rng.randrange(30_000, 600_000)
    yield {"type": "contact.completed", "at": at + wait + talk, **base, "agent": "a1",
           "pool": pool, "talk_ms": talk, "wrap_ms": 0, "handle_ms": talk,
           "disposition": ""}  # fmt: skip
    if rng.random() < 0.1:
        yield {"type": "agent.status_changed", "at": at + wait + talk, "v": "1",
               "agent": f"a{i % 50}", "pool": pool, "status": rng.choice(["available", "away"]),
               "from": "available", "reason": ""}  # fmt: skip


async def fill(redis: Redis, stream: str, n: int, seed: int = 1) -> int:
    """About `n` events of contact cycles, arrivals 50 ms apart on the engine clock."""
    rng = random.Random(seed)
    pipe = redis.pipeline(transaction=False)
    written = i = 0
    while written < n:
        for fields in _cycle(rng, i, T0 + i * 50):
            pipe.xadd(stream, fields)  # type: ignore[arg-type]
            written += 1
        i += 1
        if len(pipe) >= 5000:
            await pipe.execute()
    await pipe.execute()
    return written


async def _commandstats(redis: Redis) -> dict[str, tuple[int, int]]:
    info = await redis.info("commandstats")
    return {k: (int(v["calls"]), int(v["usec"])) for k, v in info.items()}


async def _server_us(redis: Redis, before: dict[str, tuple[int, int]]) -> float:
    after = await _commandstats(redis)
    return sum(u - before.get(k, (0, 0))[1] for k, (_, u) in after.items())


async def _drain_timed(redis: Redis, step: Any, total: int) -> dict[str, Any]:
    """Call `step` until it returns 0; its rate, calls and server time (commandstats)."""
    before = await _commandstats(redis)
    calls = done = 0
    t = time.perf_counter()
    while got := await step():
        done += got
        calls += 1
    wall = time.perf_counter() - t
    server_us = await _server_us(redis, before)
    assert done == total, (done, total)
    return {
        "per_s": round(done / wall),
        "wall_s": round(wall, 3),
        "calls": calls,
        "server_us_per_event": round(server_us / done, 2),
        "ms_per_call": round(wall * 1000 / max(calls, 1), 2),
        "server_ms_per_call": round(server_us / 1000 / max(calls, 1), 2),
    }


async def _consumer_run(
    redis: Redis, tenant: TenantConfig, n: int, batch: int, seed: int
) -> dict[str, Any]:
    keys = TenantKeys(tenant.id)
    await redis.delete(keys.events, keys.metrics_totals, keys.metrics_available)
    for k in [k async for k in redis.scan_iter(keys.prefix + "m:*")]:
        await redis.delete(k)
    total = await fill(redis, keys.events, n, seed=seed)
    for g in ("metrics", "bare", "bare_ack", "pyref"):
        await redis.xgroup_create(keys.events, g, "0")
    now = T0 + total * 50
    bare = redis.register_script(BARE_LUA)
    bare_ack = redis.register_script(BARE_ACK_LUA)
    for script in (apply_script(redis), bare, bare_ack):
        await redis.script_load(script.script)

    async def metrics_step() -> int:
        return await apply_batch(redis, tenant, now, consumer="bench", batch=batch)

    async def bare_step() -> int:
        return int(await bare(keys=[keys.events], args=["bare", batch]))

    async def bare_ack_step() -> int:
        return int(await bare_ack(keys=[keys.events], args=["bare_ack", batch]))

    async def py_step() -> int:
        r: Any = await redis.xreadgroup("pyref", "py", {keys.events: ">"}, count=batch)
        if not r:
            return 0
        ids = [e[0] for e in r[0][1]]
        await redis.xack(keys.events, "pyref", *ids)
        return len(ids)

    steps = [
        ("metrics", metrics_step),
        ("bare_lua", bare_step),
        ("bare_lua_xack", bare_ack_step),
        ("python_xreadgroup_xack", py_step),
    ]
    if seed % 2 == 0:  # alternate the order, so no side always runs on a warmer server
        steps.reverse()
    row: dict[str, Any] = {"events": total}
    for label, step in steps:
        row[label] = await _drain_timed(redis, step, total)
    for ref in ("bare_lua", "bare_lua_xack"):
        row[f"cost_x_{ref}"] = round(row[ref]["per_s"] / row["metrics"]["per_s"], 2)
    row["cost_x_python"] = round(
        row["python_xreadgroup_xack"]["per_s"] / row["metrics"]["per_s"], 2
    )
    return row


async def consumer_bench(url: str, n: int, batch: int, repeat: int) -> dict[str, Any]:
    redis = Redis.from_url(url)
    tenant = load_config_text(f'[tenant]\nid = "bench"\n{BODY}', "<bench>").tenants["bench"]
    runs: list[dict[str, Any]] = []
    try:
        for rep in range(repeat):
            row = await _consumer_run(redis, tenant, n, batch, rep + 1)
            log(f"consumer run {rep + 1}/{repeat}: {json.dumps(row)}")
            runs.append(row)
    finally:
        await redis.aclose()
    med = statistics.median(r["metrics"]["per_s"] for r in runs)
    return {"batch": batch, "runs": runs, "metrics_per_s_median": med, "target_per_s": 20_000}


# -- sse -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_http(port: int, path: str, within_s: float = 30.0) -> None:
    import aiohttp

    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(f"http://127.0.0.1:{port}{path}") as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on {port} did not start")
            await asyncio.sleep(0.2)


@contextlib.contextmanager
def _process(args: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _listen(
    port: int, path: str, token: str, n: int, seconds: float, warmup: float
) -> dict[str, Any]:
    """n streams; counts frames and lag (now - `at` of the frame) after the warm-up."""
    import aiohttp

    lags: list[float] = []
    frames = [0] * n
    sizes: list[int] = []
    t_start = time.monotonic() + warmup
    t_end = t_start + seconds
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> None:
            headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
            async with session.get(f"http://127.0.0.1:{port}{path}", headers=headers) as r:
                assert r.status == 200, await r.text()
                async for line in r.content:
                    now = time.monotonic()
                    if now >= t_end:
                        return
                    if line.startswith(b"data: ") and now >= t_start:
                        i_at = line.index(b'"at":') + 5
                        at = int(line[i_at : line.index(b",", i_at)])
                        lags.append(time.time() * 1000 - at)
                        frames[i] += 1
                        if i == 0:
                            sizes.append(len(line))

        await asyncio.gather(*(one(i) for i in range(n)))
    lags.sort()
    return {
        "streams": n,
        "seconds": seconds,
        "frames": sum(frames),
        "frames_per_s": round(sum(frames) / seconds, 1),
        "streams_without_frames": sum(1 for f in frames if f == 0),
        "frame_bytes": round(statistics.median(sizes)) if sizes else 0,
        "lag_ms_p50": round(lags[len(lags) // 2], 1) if lags else None,
        "lag_ms_p99": round(lags[int(len(lags) * 0.99)], 1) if lags else None,
        "lag_ms_max": round(lags[-1], 1) if lags else None,
    }


async def _cpu_during(pid: int, coro: Any) -> tuple[Any, float]:
    """The coroutine's result, and the process's CPU seconds per wall second during it."""
    p = psutil.Process(pid)
    c0 = sum(p.cpu_times()[:2])
    t0 = time.monotonic()
    result = await coro
    cpu = sum(p.cpu_times()[:2]) - c0
    return result, round(cpu / (time.monotonic() - t0), 3)


async def _arrivals(url: str, stop: asyncio.Event, per_s: float) -> int:
    """Contacts into the demo tenant's chat queue (nobody answers): figures change."""
    cfg = load_config(str(DEMO))
    redis = Redis.from_url(url)
    engine = Engine(redis, cfg.tenants["demo"], RealClock())
    n = 0
    try:
        while not stop.is_set():
            await engine.create_contact(NewContact(channel="chat", queue="support_chat"))
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / per_s)
    finally:
        await redis.aclose()
    return n


async def sse_bench(url: str, streams: int, seconds: float, code: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    port = _free_port()
    serve = [sys.executable, "-m", "router", "serve", "--config", str(DEMO), "--port", str(port),
             "--redis-url", url, "--log-level", "warning"]  # fmt: skip
    with _process(serve) as proc:
        await _wait_http(port, "/healthz")
        stop = asyncio.Event()
        feeder = asyncio.create_task(_arrivals(url, stop, 20))
        # the same process and arrivals with no stream open: timers, the metrics
        # consumer, maintenance; what the streams add is the difference
        _, idle_cpu = await _cpu_during(proc.pid, asyncio.sleep(seconds))
        listen = _listen(port, "/v1/metrics/stream", "demo-supervisor", streams, seconds, 3.0)
        result, cpu = await _cpu_during(proc.pid, listen)
        stop.set()
        result["contacts_created"] = await feeder
        result["server_cpu"] = cpu
        result["server_cpu_without_streams"] = idle_cpu
        out["switchboard"] = result
        log(f"sse switchboard: {json.dumps(result)}")
    size = out["switchboard"]["frame_bytes"] or 4000
    port = _free_port()
    ref = [sys.executable, "-m", "loadtests.metrics", "sse-reference", "--port", str(port),
           "--size", str(size)]  # fmt: skip
    with _process(ref) as proc:
        await _wait_http(port, "/healthz")
        listen = _listen(port, "/stream", "x", streams, seconds, 3.0)
        result, cpu = await _cpu_during(proc.pid, listen)
        result["server_cpu"] = cpu
        out["bare_aiohttp"] = result
        log(f"sse bare aiohttp: {json.dumps(result)}")
    sw, bare = out["switchboard"], out["bare_aiohttp"]
    streams_cpu = sw["server_cpu"] - sw["server_cpu_without_streams"]
    sw["server_cpu_for_streams"] = round(streams_cpu, 3)
    if bare["server_cpu"]:
        out["cpu_x_bare"] = round(sw["server_cpu"] / bare["server_cpu"], 2)
        out["streams_cpu_x_bare"] = round(streams_cpu / bare["server_cpu"], 2)
    return out


def sse_reference(port: int, size: int) -> None:
    """A bare aiohttp SSE server: one frame of `size` bytes a second to every stream."""
    import uvloop
    from aiohttp import web

    streams: set[asyncio.Queue[bytes]] = set()

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        q: asyncio.Queue[bytes] = asyncio.Queue()
        streams.add(q)
        try:
            while True:
                await resp.write(await q.get())
        except ConnectionError:
            return resp  # the client went
        finally:
            streams.discard(q)

    async def tick(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                head = f'{{"at":{round(time.time() * 1000)},'
                frame = (
                    "event: metrics\ndata: "
                    + head
                    + '"x":"'
                    + "x" * max(0, size - len(head) - 13)
                    + '"}\n\n'
                ).encode()
                for q in streams:
                    q.put_nowait(frame)
                await asyncio.sleep(1.0)

        task = asyncio.create_task(loop())
        yield
        task.cancel()

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/stream", stream)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(tick)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- main -------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"machine": machine(args.code)}
    async with valkey_url(args.redis_url, "metrics") as url:
        if args.command in ("consumer", "all"):
            out["consumer"] = await consumer_bench(url, args.events, args.batch, args.repeat)
        if args.command in ("sse", "all"):
            out["sse"] = await sse_bench(url, args.streams, args.seconds, args.code)
    out["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    return out


def cli() -> None:
    p = argparse.ArgumentParser(prog="python -m loadtests.metrics", description=__doc__)
    p.add_argument("command", choices=["consumer", "sse", "all", "sse-reference"])
    p.add_argument("--redis-url", default=None)
    p.add_argument("--events", type=int, default=200_000, help="consumer: stream length")
    p.add_argument("--batch", type=int, default=200, help="consumer: entries per call")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--streams", type=int, default=200)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--code", default=None, help="label of the code measured (default: git)")
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=4000, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.command == "sse-reference":
        sse_reference(args.port, args.size)
        return
    import uvloop

    uvloop.install()
    print(json.dumps(asyncio.run(main(args)), indent=2))


if __name__ == "__main__":
    cli()
