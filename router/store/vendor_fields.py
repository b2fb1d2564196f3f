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
from ..eligibility import pool_lanes, pool_scope, regions_field


def vendor_fields(
    tenant: TenantConfig, subqueues: Iterable[QueueConfig]
) -> dict[FieldT, EncodableT]:
    """Fields `pool:<pool>` -> vendor id, `cap:<vendor>`, `hcap:<vendor>`,
    `dcap:<vendor>` -> max_concurrent, max_per_hour, max_per_day (only when
    capped), `fail:<vendor>` -> "<timeouts>:<pause ms>", `pools:<vendor>` -> its
    pools, `lanes:<vendor>` -> `queue:channel,...` of all its pools (within
    its contract), and for every pool `rg:<pool>` -> the data-residency regions it
    may serve ("*" or ",eu,"; eligibility.regions_field), which the named-agent
    paths check."""
    queues = [*tenant.queues.values(), *subqueues]
    out: dict[FieldT, EncodableT] = {}
    lanes: dict[str, list[str]] = {}
    for pool in tenant.pools.values():
        scope = pool_scope(tenant, pool.id)
        out[f"rg:{pool.id}"] = regions_field(scope)
        if pool.vendor is None or pool.vendor not in tenant.vendors:
            continue
        out[f"pool:{pool.id}"] = pool.vendor
        lanes.setdefault(pool.vendor, []).extend(pool_lanes(queues, pool.id, scope))
    for vid, lane_list in lanes.items():
        vendor = tenant.vendors[vid]
        caps = vendor.caps
        if caps.max_concurrent is not None:
            out[f"cap:{vid}"] = str(caps.max_concurrent)
        # max_per_hour / max_per_day, counted in the vendor's hours and days
        if caps.max_per_hour is not None:
            out[f"hcap:{vid}"] = str(caps.max_per_hour)
        if caps.max_per_day is not None:
            out[f"dcap:{vid}"] = str(caps.max_per_day)
        # a failing vendor: timeouts in a row, and the pause (ms) it then gets
        pause_ms = round(vendor.fail_pause_s * 1000)
        out[f"fail:{vid}"] = f"{vendor.fail_after_timeouts}:{pause_ms}"
        out[f"pools:{vid}"] = ",".join(
            sorted(p.id for p in tenant.pools.values() if p.vendor == vid)
        )
        out[f"lanes:{vid}"] = ",".join(dict.fromkeys(lane_list))
    return out
