"""The API contract tests, run again with the server on the 3-master cluster.

`redis_url` is the cluster's URL in this directory, so `make_api` starts each
service with `--redis-url redis+cluster://...`: the startup checks, scripts,
transactions, long polls and SSE (sharded wake-ups), config reloads (sharded
pub/sub), webhooks and metrics all go through the cluster client.

Not here yet: tests/api/test_pools.py (router/vendor_state.py pipelines an MGET,
which the cluster client refuses) and tests/api/test_channels.py.
"""

from __future__ import annotations

from ..api.test_agent_events import *  # noqa: F403
from ..api.test_api import *  # noqa: F403
from ..api.test_metrics import *  # noqa: F403
from ..api.test_readyz import *  # noqa: F403
from ..api.test_reload import *  # noqa: F403
from ..api.test_respond import *  # noqa: F403
from ..api.test_tokens_and_limits import *  # noqa: F403
from ..api.test_webhooks_api import *  # noqa: F403
