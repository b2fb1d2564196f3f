"""Locust load test for a Switchboard deployment (docs/loadtesting.md).

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8080 \\
        --sb-ingest-token demo-ingest --sb-agent-token demo-agent --sb-admin-token demo-admin

Two user classes, both on the public HTTP API with bearer tokens:

- `IngestUser` creates contacts (`POST /v1/contacts`), `--sb-rate` per second each.
  With `--sb-trace T.jsonl` (the trace format of docs/traces.md) they take the trace's
  contacts in turn, cycling: channel, queue, skills, priority, language, customer and
  handle time come from it, and a contact whose `patience_s` runs out before it is
  answered is abandoned (`POST /v1/contacts/{id}/abandon`). Locust sets the pace, not
  the trace's `at`. Without a trace the contacts are synthetic: `--sb-channel`,
  `--sb-queue` (default: the channel's default queue) and exponential handle times of
  mean `--sb-handle-s`.
- `AgentUser` is one simulated agent. It registers itself (`PUT /v1/agents/{id}`) when
  given an admin token, goes available, and long-polls its offers
  (`GET /v1/agents/{id}/offers?wait=S`, which also counts as its heartbeat); it
  accepts every offer at once, completes each contact after its handle time (the
  `handle_s` attribute the ingest users put on it, else `--sb-handle-s`), ends any
  wrap-up after `--sb-wrap-up-s`, and goes offline when Locust stops it.

Every option has an environment variable (`SB_INGEST_TOKEN`, `SB_AGENT_TOKEN`,
`SB_ADMIN_TOKEN`, `SB_TRACE`, ...) and shows in Locust's web UI (tokens masked).
The defaults fit `config/demo.toml` (its demo tokens, the `chat` channel, agents in
pool `inhouse` with the demo's skills).

Request names group by route (`/v1/agents/[id]/offers`...). The long poll's response
time is how long the agent waited for an offer, not how fast the server is. A 409 on
accept (the offer expired or went to another agent), on abandon (the customer was
answered first) and on wrap-up done (the wrap-up timer ended it) is the race the
simulation expects, counted as a success.
"""

from __future__ import annotations

import itertools
import random
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, NoReturn

import gevent
from locust import HttpUser, constant_throughput, events, task
from locust.env import Environment

from loadtests.trace import FormatError, TraceContact, read_trace

DEMO_SKILLS = "billing=5,support=5,english=5,spanish=5"


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    g = parser  # not a group: only Locust's own parser takes is_secret
    tokens = (
        ("ingest", "demo-ingest", "creates contacts"),
        ("agent", "demo-agent", "a platform-wide agent token: acts for every simulated agent"),
        ("admin", "", "registers the simulated agents; without it they must already exist"),
    )
    for role, default, what in tokens:
        g.add_argument(
            f"--sb-{role}-token",
            env_var=f"SB_{role.upper()}_TOKEN",
            default=default,
            is_secret=True,
            help=f"{role} token: {what} (default: {default or 'none'})",
        )
    g.add_argument(
        "--sb-trace", env_var="SB_TRACE", default="", help="JSONL trace to take contacts from"
    )
    g.add_argument(
        "--sb-channel",
        env_var="SB_CHANNEL",
        default="",
        help="channel of synthetic contacts (default chat); with a trace: overrides its channels",
    )
    g.add_argument(
        "--sb-queue",
        env_var="SB_QUEUE",
        default="",
        help="queue of every contact (default: the trace's, or the channel's default queue)",
    )
    g.add_argument(
        "--sb-rate", env_var="SB_RATE", type=float, default=1.0, help="contacts/s per ingest user"
    )
    g.add_argument(
        "--sb-handle-s",
        env_var="SB_HANDLE_S",
        type=float,
        default=5.0,
        help="mean handle time of synthetic contacts (exponential), seconds",
    )
    g.add_argument(
        "--sb-wrap-up-s",
        env_var="SB_WRAP_UP_S",
        type=float,
        default=0.0,
        help="seconds an agent spends in wrap-up before ending it (when the config has one)",
    )
    g.add_argument(
        "--sb-poll-s",
        env_var="SB_POLL_S",
        type=float,
        default=10.0,
        help="longest wait of one offers long poll (at most 60)",
    )
    g.add_argument(
        "--sb-pool", env_var="SB_POOL", default="inhouse", help="pool of registered agents"
    )
    g.add_argument(
        "--sb-skills",
        env_var="SB_SKILLS",
        default=DEMO_SKILLS,
        help=f"skills of registered agents (default {DEMO_SKILLS})",
    )
    g.add_argument(
        "--sb-capacity",
        env_var="SB_CAPACITY",
        default="",
        help="capacity of registered agents, e.g. chat=2,voice=1 (default: 1 on the channel)",
    )
    g.add_argument(
        "--sb-agent-prefix",
        env_var="SB_AGENT_PREFIX",
        default="locust",
        help="agent ids are <prefix>-<worker>-<n>",
    )


def _stop(message: str) -> NoReturn:
    """A bad option: one line on stderr and exit status 2, like a usage error."""
    print(f"locustfile: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _levels(text: str, option: str) -> dict[str, int]:
    """`a=1,b=2` -> {"a": 1, "b": 2}."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, level = part.partition("=")
        if not sep or not level.strip().isdigit():
            raise ValueError(f"{option}: {part!r} is not name=level")
        out[name.strip()] = int(level)
    return out


class _Trace:
    """The trace's contacts, handed out in turn to every ingest user of this process."""

    def __init__(self, path: str) -> None:
        try:
            self.contacts = list(read_trace(path))
        except OSError as exc:
            _stop(f"--sb-trace: {path}: {exc.strerror}")
        except FormatError as exc:
            _stop(f"--sb-trace: {exc}")
        if not self.contacts:
            _stop(f"--sb-trace: {path}: no contacts")
        self._next: Iterator[TraceContact] = itertools.cycle(self.contacts)
        self._lock = threading.Lock()

    def take(self) -> TraceContact:
        with self._lock:
            return next(self._next)


_trace: _Trace | None = None


@events.init.add_listener
def _setup(environment: Environment, **_: Any) -> None:
    """Checks the options once per process, and loads the trace."""
    global _trace
    opts = environment.parsed_options
    if opts is None:
        return
    try:
        _levels(opts.sb_skills, "--sb-skills")
        _levels(opts.sb_capacity, "--sb-capacity")
    except ValueError as exc:
        _stop(str(exc))
    if not opts.sb_rate > 0:
        _stop("--sb-rate: must be > 0")
    if not 0 <= opts.sb_poll_s <= 60:
        _stop("--sb-poll-s: must be between 0 and 60")
    _trace = _Trace(opts.sb_trace) if opts.sb_trace else None


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class IngestUser(HttpUser):
    """A source of contacts: one `POST /v1/contacts` per 1/--sb-rate seconds."""

    weight = 1

    def wait_time(self) -> float:
        return constant_throughput(self.environment.parsed_options.sb_rate)(self)

    def on_start(self) -> None:
        self.opts = self.environment.parsed_options
        self.headers = _auth(self.opts.sb_ingest_token)

    def _contact(self) -> tuple[dict[str, Any], float | None]:
        """The request body, and the patience (s) of the customer (None: never leaves)."""
        if _trace is None:
            body: dict[str, Any] = {
                "channel": self.opts.sb_channel or "chat",
                "customer": {"id": f"k{random.randrange(1_000_000)}"},
                "attributes": {"handle_s": round(random.expovariate(1 / self.opts.sb_handle_s), 3)},
            }
            if self.opts.sb_queue:
                body["queue"] = self.opts.sb_queue
            return body, None
        c = _trace.take()
        body = {
            "channel": self.opts.sb_channel or c.channel,
            "queue": self.opts.sb_queue or c.queue,
            "priority": c.priority,
            "attributes": {"handle_s": c.handle_s, "trace_id": c.id},
        }
        if c.skills:
            body["skills"] = c.skills
        if c.language is not None:
            body["language"] = c.language
        if c.customer and c.customer.get("id") is not None:
            body["customer"] = {"id": str(c.customer["id"])}
        return body, c.patience_s

    @task
    def create_contact(self) -> None:
        body, patience = self._contact()
        with self.client.post(
            "/v1/contacts", json=body, headers=self.headers, catch_response=True
        ) as r:
            if r.status_code != 201:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                return
            contact = r.json()
        if patience is not None and contact.get("state") in ("queued", "reserved"):
            gevent.spawn_later(patience, self._give_up, contact["id"])

    def _give_up(self, cid: str) -> None:
        """The customer's patience ran out: leave, unless an agent was quicker (409)."""
        with self.client.post(
            f"/v1/contacts/{cid}/abandon",
            json={"reason": "patience"},
            headers=self.headers,
            name="/v1/contacts/[id]/abandon",
            catch_response=True,
        ) as r:
            if r.status_code in (200, 409):
                r.success()
            else:
                r.failure(f"{r.status_code}: {r.text[:200]}")


_numbers = itertools.count(1)


class AgentUser(HttpUser):
    """One simulated agent: available, takes every offer, works, completes."""

    weight = 3

    def wait_time(self) -> float:
        return 0.0  # the long poll and the handle times pace the agent

    def on_start(self) -> None:
        self.opts = self.environment.parsed_options
        runner = self.environment.runner
        worker = getattr(runner, "worker_index", 0) if runner is not None else 0
        self.id = f"{self.opts.sb_agent_prefix}-{worker}-{next(_numbers)}"
        self.headers = _auth(self.opts.sb_agent_token)
        self.held: list[tuple[float, str]] = []  # (due on time.monotonic(), contact id)
        if self.opts.sb_admin_token:
            capacity = _levels(self.opts.sb_capacity, "--sb-capacity") or {
                self.opts.sb_channel or "chat": 1
            }
            self._check(
                self.client.put(
                    f"/v1/agents/{self.id}",
                    json={
                        "pool": self.opts.sb_pool,
                        "name": f"Locust agent {self.id}",
                        "skills": _levels(self.opts.sb_skills, "--sb-skills"),
                        "capacity": capacity,
                        "status": "available",
                    },
                    headers=_auth(self.opts.sb_admin_token),
                    name="/v1/agents/[id]",
                    catch_response=True,
                ),
                (200, 201),
            )
        else:
            self._status("available")

    def on_stop(self) -> None:
        self._status("offline")

    def _status(self, status: str) -> None:
        self._check(
            self.client.post(
                f"/v1/agents/{self.id}/status",
                json={"status": status},
                headers=self.headers,
                name="/v1/agents/[id]/status",
                catch_response=True,
            ),
            (200,),
        )

    @staticmethod
    def _check(cm: Any, ok: tuple[int, ...], expected: tuple[int, ...] = ()) -> Any:
        """Marks the response: a status in `ok` or `expected` (a race) succeeds."""
        with cm as r:
            if r.status_code in ok or r.status_code in expected:
                r.success()
                return r.json() if r.status_code in ok else None
            r.failure(f"{r.status_code}: {r.text[:200]}")
            return None

    @task
    def work(self) -> None:
        """One turn: finish what is due, then wait for offers until the next is due."""
        now = time.monotonic()
        due = [cid for t, cid in self.held if t <= now]
        self.held = [(t, cid) for t, cid in self.held if t > now]
        for cid in due:
            self._complete(cid)
        wait = self.opts.sb_poll_s
        if self.held:
            wait = min(wait, min(t for t, _ in self.held) - time.monotonic())
            if wait < 0.5:  # not worth a request: the next contact is almost done
                gevent.sleep(max(0.0, wait))
                return
        got = self._check(
            self.client.get(
                f"/v1/agents/{self.id}/offers",
                params={"wait": f"{wait:.1f}"},
                headers=self.headers,
                name="/v1/agents/[id]/offers",
                catch_response=True,
            ),
            (200,),
        )
        for offer in (got or {}).get("offers", []):
            self._accept(offer)

    def _accept(self, offer: dict[str, Any]) -> None:
        accepted = self._check(
            self.client.post(
                f"/v1/offers/{offer['id']}/accept",
                json={},
                headers=self.headers,
                name="/v1/offers/[id]/accept",
                catch_response=True,
            ),
            (200,),
            (409,),
        )
        if accepted is None:
            return
        contact = accepted.get("contact") or {}
        handle = (contact.get("attributes") or {}).get("handle_s")
        if not isinstance(handle, int | float) or handle < 0:
            handle = random.expovariate(1 / self.opts.sb_handle_s)
        self.held.append((time.monotonic() + float(handle), offer["id"]))

    def _complete(self, cid: str) -> None:
        done = self._check(
            self.client.post(
                f"/v1/contacts/{cid}/complete",
                json={"disposition": "resolved"},
                headers=self.headers,
                name="/v1/contacts/[id]/complete",
                catch_response=True,
            ),
            (200,),
        )
        if done is None or done.get("state") != "wrap_up":
            return
        if self.opts.sb_wrap_up_s > 0:
            gevent.sleep(self.opts.sb_wrap_up_s)
        self._check(
            self.client.post(
                f"/v1/contacts/{cid}/wrapup-done",
                json={},
                headers=self.headers,
                name="/v1/contacts/[id]/wrapup-done",
                catch_response=True,
            ),
            (200,),
            (409,),
        )
