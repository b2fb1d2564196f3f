"""The webhook scripts: headers, includes, and typed errors on bad arguments."""

from __future__ import annotations

import pytest

from router.errors import ValidationError
from router.store.scripts import script_source
from router.webhooks.store import SCRIPTS

from .conftest import HooksFactory


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_has_a_header_and_resolves_its_includes(name: str) -> None:
    src = script_source(name)
    assert src.startswith("--[[\n" + name + ":"), name
    for part in ("KEYS[1]", "ARGV[1]", "Returns", "Errors"):
        assert part in src, (name, part)
    assert "--!include" not in src
    assert src.count("local function raise(") == 1


async def test_bad_arguments_raise_typed_errors_and_change_nothing(
    make_hooks: HooksFactory,
) -> None:
    h = await make_hooks()
    store = h.sender.stores[h.engine.tenant.id]
    before = await h.engine.redis.keys(h.engine.keys.prefix + "wh:*")
    with pytest.raises(ValidationError, match="outcome"):
        await store._run("webhook_result", "1-0.x", "tok", "maybe", 0, "", "", 0, 0)
    with pytest.raises(ValidationError, match="lease"):
        await store._run("webhook_take", 0, "p", 3, 0, 0, "crm", 1)
    with pytest.raises(ValidationError, match="max attempts"):
        await store._run("webhook_take", 1000, "p", 0, 0, 0, "crm", 1)
    with pytest.raises(ValidationError, match="max pending"):
        await store._run("webhook_enqueue", "webhooks", 0, 0)
    with pytest.raises(ValidationError, match="limit"):
        await store._run("webhook_subscribe", "ops", "{}", "x")
    with pytest.raises(ValidationError, match="op must be"):
        await store._run("webhook_dead", "explode", "1-0.x", 0, 0)
    with pytest.raises(ValidationError, match="limit"):
        await store.purge("crm", 0)
    assert await h.engine.redis.keys(h.engine.keys.prefix + "wh:*") == before
