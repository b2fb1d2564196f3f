"""Realtime replay: drive a Switchboard server over HTTP at the trace's times x speed.

Open loop: each contact is sent (`POST /v1/contacts`) at `at / speed` seconds after
the start, whatever earlier requests did; nothing waits for a response before
sending the next one. Simulated agents use the agent API as a desktop does: each
holds its event stream (`GET /v1/agents/{id}/events`), accepts an offer at once,
completes it `handle_s / speed` seconds after the offer arrived, and follows its
roster shifts with `POST /v1/agents/{id}/status`. A contact whose `patience_s / speed`
runs out before an offer reaches its agent is abandoned (`POST
/v1/contacts/{id}/abandon`). docs/replay.md ("Realtime mode") defines each figure.

Without a target, `own_server` starts one `python -m router serve` process (on a
private embedded Valkey, or --redis-url) with the given or the derived config plus
a driver token, and stops it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from hdrh.histogram import HdrHistogram
from tqdm import tqdm

from router.config.model import TenantConfig
from router.metrics import definitions as d

from .report import Counts, Outcome, build_report
from .trace import Roster, RosterAgent, TraceContact

# Histograms hold microseconds, 1 us .. 1 h, 3 significant digits.
HIST_MAX_US = 3_600_000_000
# Ingest requests in flight at once; a send that finds them all taken waits (and is
# counted under errors as "ingest: in-flight limit").
MAX_IN_FLIGHT = 2000
# After the last scheduled event, the run ends once nothing is in flight and no offer
# has arrived for this long (wall seconds).
QUIET_S = 0.5
READY_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0


class RealtimeError(Exception):
    """A run that cannot start (bad target, token, roster...); one line for the user."""


def _hist() -> HdrHistogram:
    return HdrHistogram(1, HIST_MAX_US, 3)


def _summary(h: HdrHistogram) -> dict[str, Any]:
    """p50 / p99 / max in ms (None when nothing was recorded) and the count."""
    n = h.get_total_count()
    if n == 0:
        return {"p50": None, "p99": None, "max": None, "count": 0}
    return {
        "p50": round(h.get_value_at_percentile(50) / 1000, 3),
        "p99": round(h.get_value_at_percentile(99) / 1000, 3),
        "max": round(h.get_max_value() / 1000, 3),
        "count": n,
    }


def _record(h: HdrHistogram, seconds: float) -> None:
    h.record_value(min(HIST_MAX_US, max(1, round(seconds * 1e6))))


@dataclass
class _Contact:
    """One trace contact as the driver sees it (times on the loop's monotonic clock)."""

    c: TraceContact
    sent: float = 0.0
    id: str | None = None
    outcome: Outcome | None = None
    patience: asyncio.TimerHandle | None = None


@dataclass
class _Agent:
    a: RosterAgent
    token: str = ""
    freed: float = 0.0  # send time of its last call that freed capacity
    seen: set[str] = field(default_factory=set)  # offers being handled
    connected: asyncio.Event = field(default_factory=asyncio.Event)


class RealtimeReplay:
    """One realtime replay against the server at `base_url`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        contacts: Sequence[TraceContact],
        roster: Roster,
        *,
        speed: float = 1.0,
        seed: int = 0,
        sl_threshold_s: float = 20.0,
        tenant: TenantConfig | None = None,
        progress: bool = False,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.auth = {"Authorization": f"Bearer {token}"}
        self.contacts = sorted(contacts, key=lambda c: c.at)
        self.roster = roster
        self.speed = speed
        self.seed = seed
        self.sl_threshold_s = sl_threshold_s
        self.tenant = tenant  # known with its own server: wrap-up times, abandon grace
        self.tenant_id = tenant.id if tenant is not None else ""
        self.progress = progress
        self.agents = {a.id: _Agent(a) for a in roster.agents}
        self.live: list[_Contact] = [_Contact(c) for c in self.contacts]
        self.by_id: dict[str, _Contact] = {}
        self.offered_ids: set[str] = set()  # offers that reached an agent (server ids)
        self.waiting_ids: dict[str, asyncio.Future[_Contact | None]] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.queue_counts: dict[str, Counts] = {}
        self.pool_counts: dict[str, Counts] = {}
        self.rejected: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.races: dict[str, int] = {}
        self.ingest_h = _hist()
        self.routing_h = _hist()
        self.lag_h = _hist()
        self.sem = asyncio.Semaphore(max_in_flight)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.streams: list[asyncio.Task[Any]] = []
        self.t0 = 0.0
        self.first_ingest: float | None = None
        self.last_completion: float | None = None
        self.completed = 0
        self.last_offer = 0.0
        self.ingesting = 0  # ingest tasks not finished
        self.wall_s = 0.0
        self.client_cpu_s = 0.0
        self.end_ms = 0
        self.bar: tqdm[Any] | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- helpers -------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _trace_ms(self, t: float) -> int:
        """A loop time as ms of trace time since the start (the report's clock)."""
        return round((t - self.t0) * self.speed * 1000)

    def _error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def _race(self, kind: str) -> None:
        self.races[kind] = self.races.get(kind, 0) + 1

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _call(
        self, what: str, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """One request; returns (status, JSON body or None). Exceptions count as errors
        under `what` and return status 0."""
        headers = self.auth if token is None else {"Authorization": f"Bearer {token}"}
        try:
            payload = None if method == "GET" else (body if body is not None else {})
            async with self.session.request(
                method, self.base + path, json=payload, headers=headers
            ) as resp:
                raw = await resp.read()
                return resp.status, json.loads(raw) if raw else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self._error(f"{what}: {type(exc).__name__}")
            return 0, None

    # -- setup ---------------------------------------------------------------------

    async def _setup_agent(self, ag: _Agent) -> None:
        a = ag.a
        body = {"pool": a.pool, "name": a.id, "skills": a.skills, "capacity": a.capacity}
        body["status"] = "offline"
        st, data = await self._call("setup", "PUT", f"/v1/agents/{a.id}", body=body)
        if st not in (200, 201):
            raise RealtimeError(f"PUT /v1/agents/{a.id}: {_problem(st, data)}")
        st, data = await self._call("setup", "POST", f"/v1/agents/{a.id}/token")
        if st != 201:
            raise RealtimeError(f"POST /v1/agents/{a.id}/token: {_problem(st, data)}")
        ag.token = data["token"]
        if not self.tenant_id:  # an issued token reads sb1.<tenant>.<secret>
            self.tenant_id = ag.token.split(".")[1] if ag.token.count(".") >= 2 else ""

    async def _check_target(self) -> None:
        try:
            async with self.session.get(self.base + "/healthz") as resp:
                await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RealtimeError(f"{self.base}: cannot connect ({type(exc).__name__})") from None
        # the roles, without side effects: an agent list (admin), an empty contact
        # (ingest: 422 for the missing channel, 403 without the role)
        for method, path in (("GET", "/v1/agents?status=offline"), ("POST", "/v1/contacts")):
            st, data = await self._call("setup", method, path)
            if st in (401, 403):
                raise RealtimeError(
                    f"--token: {_problem(st, data)} (the token needs the admin and ingest roles)"
                )

    async def _setup(self) -> None:
        await self._check_target()
        gate = asyncio.Semaphore(32)

        async def one(ag: _Agent) -> None:
            async with gate:
                await self._setup_agent(ag)

        await asyncio.gather(*(one(ag) for ag in self.agents.values()))
        for ag in self.agents.values():
            self.streams.append(asyncio.ensure_future(self._stream(ag)))
        waits = [asyncio.ensure_future(ag.connected.wait()) for ag in self.agents.values()]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=READY_TIMEOUT_S)
            for w in pending:
                w.cancel()
            if pending:
                raise RealtimeError(f"{len(pending)} agent event streams did not open")
        # agents on shift at the start are available before the first contact
        await asyncio.gather(
            *(self._status(ag, "available") for ag in self.agents.values() if _on_at(ag.a, 0.0))
        )

    # -- the agents ----------------------------------------------------------------

    async def _stream(self, ag: _Agent) -> None:
        """The agent's event stream: offers are taken at once; reconnects on failure."""
        path = f"/v1/agents/{ag.a.id}/events"
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        while True:
            try:
                headers = {"Authorization": f"Bearer {ag.token}", "Accept": "text/event-stream"}
                async with self.session.get(
                    self.base + path, headers=headers, timeout=timeout
                ) as resp:
                    if resp.status != 200:
                        self._error(f"events: {resp.status}")
                        await asyncio.sleep(1.0)
                        continue
                    ev, data = "", ""
                    async for raw in resp.content:
                        line = raw.decode().rstrip("\r\n")
                        if line:
                            if line.startswith("event:"):
                                ev = line[6:].strip()
                            elif line.startswith("data:"):
                                data = line[5:].lstrip()
                            continue
                        if ev == "agent":
                            ag.connected.set()
                        elif ev == "offer":
                            self._offer(ag, json.loads(data)["id"])
                        ev, data = "", ""
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self._error(f"events: {type(exc).__name__}")
                await asyncio.sleep(1.0)

    def _offer(self, ag: _Agent, cid: str) -> None:
        if cid in ag.seen:
            return
        ag.seen.add(cid)
        self.offered_ids.add(cid)
        now = self._now()
        self.last_offer = now
        self._spawn(self._handle_once(ag, cid, now, ag.freed))

    async def _handle_once(self, ag: _Agent, cid: str, t_offer: float, freed: float) -> None:
        """_handle, with the offer forgotten afterwards: the same contact can be
        offered to the same agent again (its offer went back to the queue at a shift
        end, say) and must then be taken again."""
        try:
            await self._handle(ag, cid, t_offer, freed)
        finally:
            ag.seen.discard(cid)

    async def _live_for(self, cid: str) -> _Contact | None:
        """The trace contact of a server id: the offer can beat the 201 to the client."""
        lc = self.by_id.get(cid)
        if lc is not None or self.ingesting == 0:
            return lc
        fut = self.waiting_ids.get(cid)
        if fut is None:
            fut = self.waiting_ids[cid] = asyncio.get_running_loop().create_future()
        return await fut

    async def _handle(self, ag: _Agent, cid: str, t_offer: float, freed: float) -> None:
        """Accept at once, work `handle_s / speed`, complete (and end wrap-up)."""
        st, _ = await self._call("accept", "POST", f"/v1/offers/{cid}/accept", ag.token)
        lc = await self._live_for(cid)
        if st != 200:
            self.offered_ids.discard(cid)
            if st == 409:  # the offer closed first (the customer left, it expired...)
                self._race("accept: 409")
            elif st:
                self._error(f"accept: {st}")
            return
        if lc is None or lc.outcome is None:  # not one of this run's contacts
            self._race("foreign offers")
            await self._call("complete", "POST", f"/v1/contacts/{cid}/complete", ag.token)
            return
        if lc.patience is not None:
            lc.patience.cancel()
            lc.patience = None
        o = lc.outcome
        o.answered_ms = self._trace_ms(t_offer)
        o.agent = ag.a.id
        # routing latency: from when the contact could first go to this agent (its
        # ingest sent, the agent's last freeing call sent) to the offer's arrival
        _record(self.routing_h, max(0.0, t_offer - max(lc.sent, freed)))
        self._progress()
        await asyncio.sleep(max(0.0, t_offer + lc.c.handle_s / self.speed - self._now()))
        # the agent may be offered its next contact before this response is back: its
        # freeing time is when the call leaves (again for wrap-up done, below)
        ag.freed = t_done = self._now()
        st, data = await self._call("complete", "POST", f"/v1/contacts/{cid}/complete", ag.token)
        if st != 200:
            if st:
                self._error(f"complete: {st}")
            return
        freed = t_done
        if isinstance(data, dict) and data.get("state") == "wrap_up":
            wrap_ms = 0
            if self.tenant is not None and o.queue in self.tenant.queues:
                wrap_ms = self.tenant.wrap_up_ms(self.tenant.queues[o.queue], o.channel)
            await asyncio.sleep(wrap_ms / 1000 / self.speed)
            ag.freed = freed = self._now()
            path = f"/v1/contacts/{cid}/wrapup-done"
            st, _ = await self._call("wrap-up", "POST", path, ag.token)
            if st and st not in (200, 409):  # 409: the server's wrap-up timer ended it
                self._error(f"wrap-up: {st}")
        handle_ms = round((freed - t_offer) * self.speed * 1000)  # talk + wrap-up
        for counts in (
            self.queue_counts.setdefault(o.queue, Counts()),
            self.pool_counts.setdefault(ag.a.pool, Counts()),
        ):
            counts.add(d.HANDLED)
            counts.add(d.HANDLE_MS, handle_ms)
        self.completed += 1
        self.last_completion = self._now()

    async def _status(self, ag: _Agent, status: str, reason: str = "shift_end") -> None:
        if status == "available":
            ag.freed = self._now()
        body = {"status": status, **({"reason": reason} if status == "offline" else {})}
        st, _ = await self._call("status", "POST", f"/v1/agents/{ag.a.id}/status", ag.token, body)
        if st and st != 200:
            self._error(f"status: {st}")

    # -- the customers -------------------------------------------------------------

    async def _ingest(self, lc: _Contact) -> None:
        c = lc.c
        body: dict[str, Any] = {"channel": c.channel, "queue": c.queue, "priority": c.priority}
        if c.skills:
            body["skills"] = c.skills
        if c.language is not None:
            body["language"] = c.language
        cust = (c.customer or {}).get("id")
        if cust is not None:
            body["customer"] = {"id": str(cust)}
        if self.sem.locked():
            self._error("ingest: in-flight limit")
        self.ingesting += 1
        try:
            await self._send(lc, body)
        finally:
            self.ingesting -= 1
            if self.ingesting == 0:  # every 201 is in: unknown offered ids are not ours
                for fut in self.waiting_ids.values():
                    if not fut.done():
                        fut.set_result(None)
                self.waiting_ids.clear()

    async def _send(self, lc: _Contact, body: dict[str, Any]) -> None:
        c = lc.c
        async with self.sem:
            lc.sent = t = self._now()
            if self.first_ingest is None:
                self.first_ingest = t
            _record(self.lag_h, t - (self.t0 + c.at / self.speed))
            st, data = await self._call("ingest", "POST", "/v1/contacts", body=body)
            _record(self.ingest_h, self._now() - t)
        if st != 201 or not isinstance(data, dict):
            if 400 <= st < 500 and st != 429:
                kind = f"HTTP {st}"
                self.rejected[kind] = self.rejected.get(kind, 0) + 1
            elif st:
                self._error(f"ingest: {st}")
            self._progress()
            return
        cid = str(data["id"])
        lc.id = cid
        lc.outcome = self.outcomes[c.id] = Outcome(
            c.queue, c.channel, self._trace_ms(t), round(c.handle_s * 1000)
        )
        self.by_id[cid] = lc
        fut = self.waiting_ids.pop(cid, None)
        if fut is not None and not fut.done():
            fut.set_result(lc)
        if c.patience_s is not None and cid not in self.offered_ids:
            at = t + c.patience_s / self.speed
            lc.patience = asyncio.get_running_loop().call_at(
                at, lambda: self._spawn(self._abandon(lc))
            )

    async def _abandon(self, lc: _Contact) -> None:
        """Patience ran out before an offer reached the contact's agent."""
        lc.patience = None
        o = lc.outcome
        if lc.id in self.offered_ids or o is None or o.answered_ms is not None:
            return
        t = self._now()
        body = {"reason": "customer_left"}
        st, _ = await self._call("abandon", "POST", f"/v1/contacts/{lc.id}/abandon", body=body)
        if st == 200:
            o.abandoned_ms = self._trace_ms(t)
            self._progress()
        elif st == 409:  # an offer was made meanwhile: the agent takes it
            self._race("abandon: 409")
        elif st:
            self._error(f"abandon: {st}")

    def _progress(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    # -- the run -------------------------------------------------------------------

    async def _schedule(self) -> None:
        """Arrivals and shift changes, each sent at its time; none waits for another."""
        events: list[tuple[float, int, Any]] = []
        for lc in self.live:
            events.append((lc.c.at, 1, lc))
        for ag in self.agents.values():
            for s, e in _spans(ag.a):
                if s > 0:
                    events.append((s, 0, (ag, "available")))
                events.append((e, 0, (ag, "offline")))
        events.sort(key=lambda e: (e[0], e[1]))
        for at, kind, what in events:
            delay = self.t0 + at / self.speed - self._now()
            if delay > 0:
                await asyncio.sleep(delay)
            if kind == 1:
                self._spawn(self._ingest(what))
            else:
                self._spawn(self._status(*what))

    async def _drain(self) -> None:
        """Until nothing is in flight and no offer came for QUIET_S (pending patience
        timers still fire: their contacts are waiting)."""
        loop = asyncio.get_running_loop()
        while True:
            if self.tasks:
                await asyncio.wait(set(self.tasks), timeout=0.2)
                continue
            timers = [lc.patience for lc in self.live if lc.patience is not None]
            if timers:
                nxt = min(h.when() for h in timers)
                await asyncio.sleep(max(0.0, nxt - loop.time()) + 0.01)
                continue
            quiet = loop.time() - self.last_offer
            if quiet >= QUIET_S and not self.tasks:
                return
            await asyncio.sleep(max(0.05, QUIET_S - quiet))

    async def run(self) -> dict[str, Any]:
        connector = aiohttp.TCPConnector(limit=len(self.agents) + 100)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        try:
            await self._setup()
            self.bar = tqdm(
                total=len(self.live),
                disable=not self.progress,
                file=sys.stderr,
                unit="contact",
                desc="replay",
                mininterval=0.5,
            )
            wall0, cpu0 = time.perf_counter(), time.process_time()
            self.t0 = self._now()
            await self._schedule()
            await self._drain()
            self.wall_s = time.perf_counter() - wall0
            self.client_cpu_s = time.process_time() - cpu0
            self.end_ms = self._trace_ms(self._now())
            # the roster's agents do not stay available on a deployment after the run
            await asyncio.gather(
                *(self._status(ag, "offline", "replay_end") for ag in self.agents.values())
            )
        finally:
            if self.bar is not None:
                self.bar.close()
            for t in self.streams:
                t.cancel()
            for t in list(self.tasks):
                t.cancel()
            await asyncio.gather(*self.streams, *self.tasks, return_exceptions=True)
            await self._session.close()
        return self.report()

    # -- the report ----------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """build_report's figures (times in trace seconds: wall time x speed), plus the
        realtime-only fields of docs/replay.md."""
        span = None
        if self.first_ingest is not None and self.last_completion is not None:
            span = self.last_completion - self.first_ingest
        throughput = self.completed / span if span and span > 0 else 0.0
        grace_ms = 0
        if self.tenant is not None:
            grace_ms = round(self.tenant.metrics.abandon_grace_s * 1000)
        rep = build_report(
            mode="realtime",
            tenant=self.tenant_id,
            seed=self.seed,
            outcomes=self.outcomes,
            queue_counts=self.queue_counts,
            pool_counts=self.pool_counts,
            agents=self.roster.agents,
            rejected=self.rejected,
            sl_threshold_s=self.sl_threshold_s,
            grace_ms=grace_ms,
            start_ms=0,
            end_ms=self.end_ms,
            wall_s=self.wall_s,
            throughput_per_s=throughput,
        )
        rep["speed"] = self.speed
        rep["completed"] = self.completed
        rep["routing_latency_ms"] = _summary(self.routing_h)
        rep["ingest_latency_ms"] = _summary(self.ingest_h)
        rep["schedule_lag_ms"] = _summary(self.lag_h)
        rep["client_cpu_s"] = round(self.client_cpu_s, 2)
        rep["errors"] = dict(sorted(self.errors.items()))
        rep["races"] = dict(sorted(self.races.items()))
        return rep


def _problem(status: int, data: Any) -> str:
    if status == 0:
        return "no response"
    detail = data.get("detail") if isinstance(data, dict) else None
    return f"HTTP {status}" + (f": {detail}" if detail else "")


def _spans(a: RosterAgent) -> list[tuple[float, float]]:
    """The agent's shifts merged, in trace seconds (none: always on)."""
    out: list[tuple[float, float]] = []
    for s, e in sorted(a.shifts or ()):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _on_at(a: RosterAgent, t: float) -> bool:
    return a.shifts is None or any(s <= t < e for s, e in _spans(a))


# -- the replay's own server -----------------------------------------------------------


def driver_toml(config_text: str, token: str) -> str:
    """The config text plus a driver token (admin + ingest, not rate limited) and, when
    the config sets none, [limits] high enough for the simulated agents' tokens."""
    doc = tomllib.loads(config_text)
    prefix = ""
    scope = doc
    if "tenants" in doc:
        first = next(iter(doc["tenants"]))
        prefix = f'tenants."{first}".'
        scope = doc["tenants"][first]
    lines = ["", "# Added by the realtime replay: its driver token."]
    if "limits" not in scope:
        lines += [f"[{prefix}limits]", "requests_per_s = 1000000", "burst = 1000000", ""]
    sha = hashlib.sha256(token.encode()).hexdigest()
    lines += [
        f"[[{prefix}tokens]]",
        'name = "realtime replay driver"',
        f'sha256 = "{sha}"',
        'roles = ["admin", "ingest"]',
        "requests_per_s = 1000000",
        "burst = 1000000",
        "",
    ]
    return config_text.rstrip("\n") + "\n" + "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """The replay's own server process."""

    url: str
    pid: int

    def cpu_s(self) -> float | None:
        """CPU seconds the server process has used so far (Linux; else None)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def own_server(config_text: str, *, redis_url: str | None = None) -> AsyncIterator[Served]:
    """One `python -m router serve` process on a free port with this config, yielded
    once /readyz answers 200; SIGTERM (then SIGKILL) at the end."""
    with tempfile.TemporaryDirectory(prefix="sb-realtime-") as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(config_text, encoding="utf-8")
        port = free_port()
        cmd = [sys.executable, "-m", "router", "serve", "--config", str(cfg)]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        cmd += ["--redis-url", redis_url] if redis_url else ["--data-dir", str(Path(tmp) / "data")]
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=log, stderr=asyncio.subprocess.STDOUT, env={**os.environ}
            )
        base = f"http://127.0.0.1:{port}"
        try:
            await _wait_ready(proc, base, log_path)
            yield Served(base, proc.pid)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 15.0)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _wait_ready(proc: asyncio.subprocess.Process, base: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                text = await asyncio.to_thread(log_path.read_text, errors="replace")
                lines = text.strip().splitlines()
                last = lines[-1] if lines else ""
                raise RealtimeError(f"the server exited with {proc.returncode}: {last}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                async with s.get(base + "/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RealtimeError(f"the server at {base} was not ready after {READY_TIMEOUT_S:g} s")


def new_token() -> str:
    return "rt-" + secrets.token_urlsafe(24)


# -- the command (python -m loadtests.replay --mode realtime) -------------------------


def _fail(msg: str) -> int:
    print(f"replay: error: {msg}", file=sys.stderr)
    return 2


def _check_args(args: Any) -> str | None:
    """The first problem with the realtime options, or None."""
    if args.target is not None and not args.token:
        return "--target needs --token (a token with the admin and ingest roles)"
    if args.token is not None and args.target is None:
        return "--token is for --target; without --target the replay makes its own"
    if args.target is not None:
        if not args.target.startswith(("http://", "https://")):
            return f"--target: must be an http:// or https:// URL, got {args.target!r}"
        if args.config is not None or args.redis_url is not None:
            return "--config and --redis-url are for the replay's own server, not --target"
    if not args.speed > 0 or args.speed != args.speed or args.speed == float("inf"):
        return f"--speed: must be > 0, got {args.speed:g}"
    return None


async def main_realtime(args: Any) -> int:
    """`--mode realtime`: returns the exit status (2 for bad input, one line)."""
    from router.errors import SwitchboardError

    from .derive import DEFAULT_SL_THRESHOLD_S, derive_toml
    from .replay import load_tenant, read_inputs, write_reports

    problem = _check_args(args)
    if problem:
        return _fail(problem)
    inputs = read_inputs(args)
    if isinstance(inputs, str):
        return _fail(inputs)
    contacts, roster, sl = inputs
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    options: dict[str, Any] = {"speed": args.speed, "seed": args.seed, "progress": progress}
    try:
        if args.target is not None:
            sim = RealtimeReplay(
                args.target, args.token, contacts, roster, sl_threshold_s=sl, **options
            )
            rep = await sim.run()
        else:
            try:
                tenant = load_tenant(
                    args.config, contacts, roster, tenant=args.tenant, sl_threshold_s=sl
                )
                if args.config is None:
                    text = derive_toml(contacts, roster, tenant=args.tenant, sl_threshold_s=sl)
                else:
                    text = await asyncio.to_thread(Path(args.config).read_text, encoding="utf-8")
            except OSError as exc:
                return _fail(f"{exc.filename}: {exc.strerror}")
            except SwitchboardError as exc:  # ConfigError: "<file>: <key path>: <problem>"
                return _fail(str(exc).splitlines()[0])
            if args.config and args.sl_threshold is None:
                thresholds = {d.service_clock(q)[1] for q in tenant.queues.values()}
                sl = thresholds.pop() if len(thresholds) == 1 else DEFAULT_SL_THRESHOLD_S
            token = new_token()
            if args.redis_url:
                await _drop(args.redis_url, tenant.id)
            try:
                async with own_server(driver_toml(text, token), redis_url=args.redis_url) as srv:
                    sim = RealtimeReplay(
                        srv.url,
                        token,
                        contacts,
                        roster,
                        sl_threshold_s=sl,
                        tenant=tenant,
                        **options,
                    )
                    cpu0 = srv.cpu_s()
                    rep = await sim.run()
                    cpu1 = srv.cpu_s()
                    if cpu0 is not None and cpu1 is not None:
                        rep["server_cpu_s"] = round(cpu1 - cpu0, 2)
            finally:
                if args.redis_url:
                    await _drop(args.redis_url, tenant.id)
    except RealtimeError as exc:
        return _fail(str(exc))
    await write_reports(rep, args)  # --report, and --html's page
    rl, il = rep["routing_latency_ms"], rep["ingest_latency_ms"]
    print(
        f"replay: {rep['offered']} contacts in {rep['wall_s']} s wall, "
        f"{rep['throughput_per_s']} completed/s; routing p99 {rl['p99']} ms, "
        f"ingest p99 {il['p99']} ms; errors {sum(rep['errors'].values())}; "
        f"report: {args.report}",
        file=sys.stderr,
    )
    return 0


async def _drop(url: str, tenant: str) -> None:
    """The replay's tenant starts and ends empty on a --redis-url server."""
    from router.store.connection import connect

    from .bench import drop_tenant

    r = await connect(url)
    try:
        await drop_tenant(r, tenant)
    finally:
        await r.aclose()
