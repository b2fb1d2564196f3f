"""The `vend` hash that routing reads to enforce vendor caps (docs/vendors.md).

Routing scripts skip a pool whose vendor already holds `max_concurrent`
contacts, and dispatch the vendor's lanes when it has room again, so they need
the pool -> vendor map, the caps and the lanes in Redis, next to the queue
hashes that `Engine.apply_config` writes in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.typing import EncodableT, FieldT

from ..config.model import QueueConfig, TenantConfig
from ..eligibility import pool_lanes


def vendor_fields(
    tenant: TenantConfig, subqueues: Iterable[QueueConfig]
) -> dict[FieldT, EncodableT]:
    """Fields `pool:<pool>` -> vendor id, `cap:<vendor>` -> max_concurrent (only
    when capped) and `lanes:<vendor>` -> `queue:channel,...` of all its pools."""
    queues = [*tenant.queues.values(), *subqueues]
    out: dict[FieldT, EncodableT] = {}
    lanes: dict[str, list[str]] = {}
    for pool in tenant.pools.values():
        if pool.vendor is None or pool.vendor not in tenant.vendors:
            continue
        out[f"pool:{pool.id}"] = pool.vendor
        lanes.setdefault(pool.vendor, []).extend(pool_lanes(queues, pool.id))
    for vid, lane_list in lanes.items():
        cap = tenant.vendors[vid].caps.max_concurrent
        if cap is not None:
            out[f"cap:{vid}"] = str(cap)
        out[f"lanes:{vid}"] = ",".join(dict.fromkeys(lane_list))
    return out
