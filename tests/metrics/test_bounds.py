"""The work of one consumer call is bounded: history_days has an upper bound, and
an available span longer than the retention is split only over the buckets kept."""

from __future__ import annotations

import pytest

from router.clock import VirtualClock
from router.config.loader import load_config_text
from router.errors import ConfigError
from router.metrics.consumer import drain
from router.model import AgentStatus

from ..conftest import EngineFactory
from ..factories import agent, tenant_toml
from .conftest import METRICS_BODY, T0

DAY = 86_400_000
QTR = 900_000


def test_history_days_has_an_upper_bound() -> None:
    def body(days: int) -> str:
        return METRICS_BODY.replace("history_days = 2", f"history_days = {days}")

    ok = load_config_text(tenant_toml("m", body(400)), "t.toml")
    assert ok.tenants["m"].metrics.history_days == 400
    with pytest.raises(ConfigError) as info:
        load_config_text(tenant_toml("m", body(401)), "t.toml")
    assert str(info.value) == "t.toml: metrics.history_days: must be <= 400"


async def test_a_span_longer_than_the_retention_fills_only_the_buckets_kept(
    make_engine: EngineFactory,
) -> None:
    clock = VirtualClock(T0 - 10 * DAY + 123_456)  # not on a bucket boundary
    e = await make_engine(METRICS_BODY, clock)  # history_days = 2
    await e.upsert_agent(agent("ana", "inhouse"))
    await e.set_agent_status("ana", AgentStatus.AVAILABLE)
    await drain(e)
    end = T0 + 7 * 60_000 + 30_000  # 7.5 minutes into a quarter
    clock.set_ms(end)
    await e.set_agent_status("ana", AgentStatus.AWAY)
    await drain(e)
    k = e.keys
    starts = [int(s) for s in await e.redis.zrange(k.metrics_index("15m"), 0, -1)]
    first = T0 - 2 * DAY  # the oldest quarter kept
    assert starts == list(range(first, T0 + QTR, QTR))  # 2 x 96 + 1 quarters
    pipe = e.redis.pipeline(transaction=False)
    for s in starts:
        pipe.hget(k.metrics_bucket("15m", s), "p:inhouse:avail")
    got = [int(v) for v in await pipe.execute()]
    assert got == [QTR] * (len(starts) - 1) + [450_000]
    minutes = [int(s) for s in await e.redis.zrange(k.metrics_index("1m"), 0, -1)]
    assert len(minutes) == 121  # two hours of minute buckets and the current one
    total = int(await e.redis.hget(k.metrics_totals, "p:inhouse:avail") or 0)
    assert total == end - (T0 - 10 * DAY + 123_456)  # the totals keep the whole span
