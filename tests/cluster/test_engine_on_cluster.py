"""The engine's transition, timer, conversation and stream-consumer tests, run
again on the 3-master cluster.

The `redis` and `scripts` fixtures of this directory make `make_engine` build
engines on the cluster client with strict (`#!lua`) scripts, so every call here
also proves the script keeps to its tenant's slot. Tenant ids are random, so the
tenants spread over the three shards.
"""

from __future__ import annotations

from ..engine.test_timers import *  # noqa: F403
from ..engine.test_transitions import *  # noqa: F403
from ..test_conversations import *  # noqa: F403
from ..webhooks.test_streams import *  # noqa: F403

# starts its own standalone server: nothing to learn from it here
del test_a_real_out_of_memory_server_never_parks_entries  # noqa: F821
