"""Several engine processes on the cluster, and one of them killed mid-traffic
(tests/engine/test_processes.py, with the workers on the cluster client)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..engine import test_processes
from ..engine.test_processes import (  # noqa: F401
    ROOT,
    test_four_processes_keep_the_invariants,
    test_sigkill_mid_traffic_loses_nothing,
)

pytestmark = pytest.mark.slow


def _spawn_on_cluster(
    url: str, cfg: Path, wid: int, nw: int, n: int, stop: Path
) -> subprocess.Popen[str]:
    args = [url, str(cfg), str(wid), str(nw), str(n), "7", str(stop)]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cluster.worker", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture(autouse=True)
def _workers_on_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(test_processes, "_spawn", _spawn_on_cluster)
