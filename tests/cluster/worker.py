"""tests/procs/worker.py (one engine process with its agents' desktops), on a cluster
URL: the same worker with its client made by `cluster_client`."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from router.store.connection import cluster_client, is_cluster_url

from ..procs import worker


class _Clients:
    @staticmethod
    def from_url(url: str, **kwargs: Any) -> Any:
        if is_cluster_url(url):
            return cluster_client(url, **kwargs)
        return worker.Redis.from_url(url, **kwargs)


if __name__ == "__main__":
    worker.Redis = _Clients  # type: ignore[assignment,misc]
    asyncio.run(worker.main(sys.argv[1:]))
