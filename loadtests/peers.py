"""arq and saq, the peers of the `cycle` benchmark: no-op jobs, enqueue to processed.

The file has two halves:

- The setup (`ensure_venv`, `run_peer`) runs in Switchboard's own environment and
  uses the standard library only, so `loadtests.bench` can import it. The peers
  live in a virtual environment of their own (`.venv-peers`, pinned by
  `loadtests/peers-requirements.txt`), because arq needs redis-py < 6.
- The runner runs INSIDE that environment, as a script:
  `.venv-peers/bin/python -P loadtests/peers.py run arq --redis-url URL --jobs N`.
  It imports arq or saq (with redis-py and uvloop) inside functions only. It
  enqueues the no-op jobs from its own process and starts one worker process.

What is timed (docs/benchmarks.md section 13):

- `concurrent` (the headline, like `cycle`): the worker is running; a warm-up of W
  jobs is enqueued and processed first. Then the clock starts, the N jobs are
  enqueued by C concurrent tasks while the worker processes them, and the clock
  stops when the worker has finished the N-th job (after the peer has recorded
  its result). jobs_per_s = N / that time.
- `backlog`: the N jobs are enqueued with no worker running (`enqueue_s`); then
  the worker starts and drains them (`drain_s`, from the moment it is told to
  start, so it includes the worker's start-up). jobs_per_s = N / (enqueue_s +
  drain_s). No warm-up.

The two processes share the clock: `time.monotonic()` is CLOCK_MONOTONIC on Linux,
one clock for the whole machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
REQUIREMENTS = HERE.with_name("peers-requirements.txt")
VENV = ROOT / ".venv-peers"
PEERS = ("arq", "saq")
MODES = ("concurrent", "backlog")

# -- setup: runs in Switchboard's environment (stdlib only) --------------------------


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure_venv(venv: Path = VENV, base_python: str | None = None, quiet: bool = True) -> bool:
    """Create or refresh the peers' environment; True when pip had to run.

    Idempotent: a stamp holds the digest of the requirements file that was
    installed, so a second call with the same pins does nothing. A lock file keeps
    two callers (say, two test runs) from running pip on it at once.
    """
    key = hashlib.sha256(str(venv.resolve()).encode()).hexdigest()[:16]
    lock = Path(tempfile.gettempdir()) / f"switchboard-peers-{key}.lock"
    with lock.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        return _ensure_venv(venv, base_python, quiet)


def _ensure_venv(venv: Path, base_python: str | None, quiet: bool) -> bool:
    stamp = venv / ".requirements.sha256"
    want = requirements_digest()
    py = venv_python(venv)
    if py.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return False
    if not py.exists():
        subprocess.run([base_python or sys.executable, "-m", "venv", str(venv)], check=True)
    cmd = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(REQUIREMENTS)]
    subprocess.run([*cmd, "-q"] if quiet else cmd, check=True)
    stamp.write_text(want + "\n")
    return True


def run_peer(
    peer: str,
    redis_url: str,
    jobs: int,
    *,
    mode: str = "concurrent",
    concurrency: int = 64,
    warmup: int | None = None,
    queue: str | None = None,
    verify: bool = False,
    cleanup: bool = False,
    venv: Path = VENV,
    timeout_s: float = 600.0,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """Run the runner in the peers' environment; its JSON result."""
    cmd = [str(venv_python(venv)), "-P", str(HERE), "run", peer, "--redis-url", redis_url]
    cmd += ["--jobs", str(jobs), "--mode", mode, "--concurrency", str(concurrency)]
    if warmup is not None:
        cmd += ["--warmup", str(warmup)]
    if queue:
        cmd += ["--queue", queue]
    if verify:
        cmd.append("--verify")
    if cleanup:
        cmd.append("--cleanup")
    cmd += extra or []
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout_s, check=True)
    lines = [x for x in out.stdout.splitlines() if x.strip()]
    if not lines:
        raise RuntimeError(f"{peer} runner printed nothing")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# -- runner: runs in the peers' environment ------------------------------------------


def default_warmup(jobs: int) -> int:
    """The warm-up of `cycle`: a tenth of the jobs, at least 200, at most 2,000."""
    return min(max(jobs // 10, 200), 2000)


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def host_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot (as loadtests.bench)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    return (user + nice + system + irq + softirq) / hz, steal / hz


async def noop(ctx: Any) -> None:
    """The job: nothing. Both peers name it by its __qualname__, "noop"."""
    return None


class Peer:
    """One peer: the enqueuer side (this process) and the worker side (the child)."""

    name = ""

    def __init__(self, url: str, queue: str, concurrency: int, opts: argparse.Namespace) -> None:
        self.url, self.queue, self.concurrency, self.opts = url, queue, concurrency, opts

    def version(self) -> str:
        from importlib.metadata import version

        return version(self.name)

    def settings(self) -> dict[str, Any]:
        return {}

    async def connect(self) -> None:
        raise NotImplementedError

    async def enqueue(self) -> str:
        """Enqueue one no-op job; its id."""
        raise NotImplementedError

    async def verify(self, ids: list[str]) -> int:
        """How many of these jobs completed successfully."""
        raise NotImplementedError

    async def cleanup(self, ids: list[str]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def work(self, on_done: Callable[[], None]) -> None:
        """Run one worker until cancelled; call on_done after each finished job."""
        raise NotImplementedError


class Arq(Peer):
    name = "arq"

    def settings(self) -> dict[str, Any]:
        return {"max_jobs": self.concurrency, "poll_delay_s": self.opts.poll_delay}

    def _redis_settings(self) -> Any:
        from arq.connections import RedisSettings

        return RedisSettings.from_dsn(self.url)

    async def connect(self) -> None:
        from arq import create_pool

        self.pool = await create_pool(self._redis_settings(), default_queue_name=self.queue)

    async def enqueue(self) -> str:
        job = await self.pool.enqueue_job("noop")
        if job is None:
            raise RuntimeError("arq refused a job")
        return str(job.job_id)

    async def verify(self, ids: list[str]) -> int:
        from arq.jobs import Job

        ok = 0
        for i in range(0, len(ids), 200):
            infos = await asyncio.gather(
                *(Job(j, self.pool, _queue_name=self.queue).result_info() for j in ids[i : i + 200])
            )
            ok += sum(1 for x in infos if x is not None and x.success)
        return ok

    async def cleanup(self, ids: list[str]) -> None:
        from arq.constants import job_key_prefix, result_key_prefix

        keys = [p + j for j in ids for p in (job_key_prefix, result_key_prefix)]
        keys += [self.queue, self.queue + ":health-check"]
        for i in range(0, len(keys), 500):
            await self.pool.delete(*keys[i : i + 500])

    async def close(self) -> None:
        await self.pool.aclose()

    async def work(self, on_done: Callable[[], None]) -> None:
        from arq.worker import Worker

        async def after(ctx: Any) -> None:
            on_done()

        w = Worker(
            functions=[noop],
            redis_settings=self._redis_settings(),
            queue_name=self.queue,
            max_jobs=self.concurrency,
            poll_delay=self.opts.poll_delay,
            handle_signals=False,
            after_job_end=after,
        )
        try:
            await w.main()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(w.close())


class Saq(Peer):
    name = "saq"

    def settings(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency}

    async def connect(self) -> None:
        from saq.queue.redis import RedisQueue

        self.q = RedisQueue.from_url(self.url, name=self.queue)
        await self.q.connect()

    async def enqueue(self) -> str:
        job = await self.q.enqueue("noop")
        if job is None:
            raise RuntimeError("saq refused a job")
        return str(job.key)

    async def verify(self, ids: list[str]) -> int:
        from saq.job import Status

        ok = 0
        for i in range(0, len(ids), 200):
            jobs = await self.q.jobs(ids[i : i + 200])
            ok += sum(1 for j in jobs if j is not None and j.status == Status.COMPLETE)
        return ok

    async def cleanup(self, ids: list[str]) -> None:
        r = self.q.redis
        for pattern in (f"saq:{self.queue}:*", f"saq:job:{self.queue}:*"):
            keys = [k async for k in r.scan_iter(match=pattern, count=1000)]
            for i in range(0, len(keys), 500):
                await r.delete(*keys[i : i + 500])

    async def close(self) -> None:
        await self.q.disconnect()

    async def work(self, on_done: Callable[[], None]) -> None:
        from saq import Queue, Worker

        q = Queue.from_url(self.url, name=self.queue)

        async def after(ctx: Any) -> None:
            on_done()

        w = Worker(q, functions=[noop], concurrency=self.concurrency, after_process=after)
        try:
            await w.start()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(w.stop())
            with contextlib.suppress(Exception):
                await q.disconnect()


def make_peer(args: argparse.Namespace) -> Peer:
    cls = {"arq": Arq, "saq": Saq}[args.peer]
    return cls(args.redis_url, args.queue, args.concurrency, args)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def worker_main(args: argparse.Namespace) -> None:
    """The worker process: wait for "go", run the peer's worker, report milestones."""
    # saq warns when it cancels its idle dequeue tasks at the stop; nothing is lost
    logging.getLogger("saq").setLevel(logging.ERROR)
    peer = make_peer(args)
    milestones = sorted(int(x) for x in args.milestones.split(","))
    done = 0
    finished = asyncio.Event()

    def on_done() -> None:
        nonlocal done
        done += 1
        if milestones and done >= milestones[0]:
            emit(event="milestone", count=done, t=time.monotonic(), cpu=cpu_s())
            milestones.pop(0)
            if not milestones:
                finished.set()

    loop = asyncio.get_running_loop()
    emit(event="ready")
    await loop.run_in_executor(None, sys.stdin.readline)
    emit(event="go", t=time.monotonic(), cpu=cpu_s())
    task = asyncio.create_task(peer.work(on_done))
    waiter = asyncio.create_task(finished.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # the worker stopped early: raise its error
        raise RuntimeError(f"{peer.name} worker stopped after {done} jobs")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
        await asyncio.wait_for(task, 10)


class Child:
    """The worker process, seen from the enqueuer: JSON lines in, "go" out."""

    def __init__(self, proc: asyncio.subprocess.Process, timeout_s: float) -> None:
        self.proc, self.timeout_s = proc, timeout_s

    async def next(self, event: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), self.timeout_s)
            if not line:
                code = await self.proc.wait()
                raise RuntimeError(f"worker process exited ({code}) before {event!r}")
            msg: dict[str, Any] = json.loads(line)
            if msg["event"] == event:
                return msg

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")


async def server_cpu(r: Any) -> float:
    info = await r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def enqueue_all(peer: Peer, n: int, concurrency: int, ids: list[str]) -> None:
    it: Iterator[int] = iter(range(n))

    async def one() -> None:
        for _ in it:
            ids.append(await peer.enqueue())

    await asyncio.gather(*(one() for _ in range(max(1, min(concurrency, n)))))


async def run_main(args: argparse.Namespace) -> dict[str, Any]:
    """The enqueuer process: start the worker process, enqueue, time, report."""
    from redis import __version__ as redis_py_version
    from redis.asyncio import Redis

    n, c = args.jobs, args.concurrency
    warm = 0
    if args.mode == "concurrent":
        warm = default_warmup(n) if args.warmup is None else args.warmup
    milestones = [warm, warm + n] if warm else [n]
    cmd = [sys.executable, "-P", str(HERE), "worker", args.peer, "--redis-url", args.redis_url]
    cmd += ["--queue", args.queue, "--concurrency", str(c), "--poll-delay", str(args.poll_delay)]
    cmd += ["--milestones", ",".join(map(str, milestones))]
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    child = Child(proc, args.timeout)
    peer = make_peer(args)
    r = Redis.from_url(args.redis_url)
    ids: list[str] = []
    worker_cpu: float | None = None
    try:
        await peer.connect()
        await child.next("ready")
        if args.mode == "concurrent":
            child.go()
            await child.next("go")
            if warm:
                await enqueue_all(peer, warm, c, ids)
                start = await child.next("milestone")
            srv0, (busy0, steal0), cpu0 = await server_cpu(r), host_cpu(), time.process_time()
            t0 = time.monotonic()
            await enqueue_all(peer, n, c, ids)
            t1 = time.monotonic()
            end = await child.next("milestone")
            enqueue_s, drain_s = t1 - t0, None
            worker_cpu = end["cpu"] - start["cpu"] if warm else None
        else:
            srv0, (busy0, steal0), cpu0 = await server_cpu(r), host_cpu(), time.process_time()
            t0 = time.monotonic()
            await enqueue_all(peer, n, c, ids)
            t1 = time.monotonic()
            child.go()
            start = await child.next("go")
            end = await child.next("milestone")
            enqueue_s, drain_s = t1 - t0, end["t"] - t1
        cpu1, (busy1, steal1) = time.process_time(), host_cpu()
        srv1 = await server_cpu(r)
        wall = end["t"] - t0
        if worker_cpu is None:
            worker_cpu = end["cpu"] - start["cpu"]
        enq_cpu, srv = cpu1 - cpu0, srv1 - srv0
        # the window ends at the worker's last job; our own clock read is a little later
        host_wall = max(time.monotonic() - t0, wall)
        ours = (enq_cpu + worker_cpu + srv) / host_wall
        verified = await peer.verify(ids[warm:]) if args.verify else None
        return {
            "peer": args.peer,
            "version": peer.version(),
            "redis_py": redis_py_version,
            "loop": loop_name(),
            "mode": args.mode,
            "jobs": n,
            "warmup": warm,
            "concurrency": c,
            "settings": peer.settings(),
            "jobs_per_s": round(n / wall, 1),
            "wall_s": round(wall, 3),
            "enqueue_s": round(enqueue_s, 3),
            "enqueue_jobs_per_s": round(n / enqueue_s, 1),
            "drain_s": None if drain_s is None else round(drain_s, 3),
            "per_job_us": {
                "enqueuer_cpu": round(1e6 * enq_cpu / n, 1),
                "worker_cpu": round(1e6 * worker_cpu / n, 1),
                "server_cpu": round(1e6 * srv / n, 1),
            },
            "host_load": {
                "ours_cores": round(ours, 3),
                "other_cores": round(max(0.0, (busy1 - busy0) / host_wall - ours), 3),
                "steal_cores": round((steal1 - steal0) / host_wall, 3),
            },
            "verified": verified,
        }
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()
        if args.cleanup:  # after the worker is gone: it writes keys until it stops
            with contextlib.suppress(Exception):
                await peer.cleanup(ids)
        with contextlib.suppress(Exception):
            await peer.close()
        await r.aclose()


def loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="peers.py",
        description="arq/saq no-op job throughput (run inside .venv-peers; "
        "see `python -m loadtests.bench peers`).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("run", "worker"):
        sp = sub.add_parser(name, help="enqueue and time" if name == "run" else "(internal)")
        sp.add_argument("peer", choices=PEERS)
        sp.add_argument("--redis-url", required=True)
        sp.add_argument("--queue", default=f"peers-{uuid.uuid4().hex[:8]}", help="queue name")
        sp.add_argument(
            "-c", "--concurrency", type=int, default=64, help="worker jobs in flight (64)"
        )
        sp.add_argument(
            "--poll-delay", type=float, default=0.0, help="arq's poll_delay in s (0; arq: 0.5)"
        )
        if name == "run":
            sp.add_argument("-n", "--jobs", type=int, default=20000, help="jobs timed (20000)")
            sp.add_argument("--mode", choices=MODES, default="concurrent")
            sp.add_argument(
                "--warmup", type=int, help="jobs before the clock starts (concurrent mode)"
            )
            sp.add_argument("--verify", action="store_true", help="check every job completed")
            sp.add_argument("--cleanup", action="store_true", help="delete the jobs' keys")
            sp.add_argument("--timeout", type=float, default=300.0, help="s per step (300)")
        else:
            sp.add_argument("--milestones", required=True, help="job counts to report")
    return p


def run(coro: Awaitable[Any]) -> Any:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "worker":
        run(worker_main(args))
        return 0
    out = run(run_main(args))
    emit(**out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
