"""API test fixtures: a real Service on the session's Valkey, served by aiohttp's test server."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Protocol

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from router.api.app import build_api
from router.clock import VirtualClock
from router.config import load_config_text
from router.config.model import Role
from router.service import Service, ServiceOptions

from ..conftest import drop_tenant, new_tenant_id
from ..factories import tenant_toml


def token(tenant: str, name: str) -> str:
    return f"{tenant}-{name}"


# name -> (roles, extra keys) of the tokens every test tenant has
TOKENS: dict[str, tuple[tuple[Role, ...], str]] = {
    "admin": ((Role.ADMIN,), ""),
    "ingest": ((Role.INGEST,), ""),
    "agent": ((Role.AGENT,), ""),
    "a1": ((Role.AGENT,), 'agent = "a1"'),
    "supervisor": ((Role.SUPERVISOR,), ""),
    "near-supervisor": ((Role.SUPERVISOR,), 'pool = "near"'),
}


def api_toml(tenant: str, body: str | None = None, extra: str = "") -> str:
    """A whole config file for a test tenant: `body` (tests/factories.py's by
    default), default queues, its tokens, and `extra` TOML."""
    if "[limits]" not in extra:  # tests make many requests in no (virtual) time
        extra += "\n[limits]\nrequests_per_s = 1000000\n"
    defaults = '[default_queues]\nvoice = "voice"\nchat = "chat"\nemail = "email"'
    if "[queues.msgs]" in (body or ""):  # a test queue for SMS and social messages
        defaults += '\nsms = "msgs"\nsocial = "msgs"'
    parts = [tenant_toml(tenant, body), extra, defaults]
    for name, (roles, keys) in TOKENS.items():
        digest = hashlib.sha256(token(tenant, name).encode()).hexdigest()
        role_list = ", ".join(f'"{r.value}"' for r in roles)
        parts.append(
            f'[[tokens]]\nname = "{token(tenant, name)}"\nsha256 = "{digest}"\n'
            f"roles = [{role_list}]\n{keys}"
        )
    return "\n".join(parts) + "\n"


@dataclasses.dataclass
class Api:
    client: TestClient
    service: Service
    tenant: str
    clock: VirtualClock

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(self.tenant, name)}"}


class ApiFactory(Protocol):
    def __call__(
        self,
        body: str | None = None,
        *,
        extra: str = "",
        config_file: Path | None = None,
        share_with: Api | None = None,
    ) -> Awaitable[Api]: ...


@pytest.fixture
async def make_api(redis_url: str, redis: Redis) -> AsyncIterator[ApiFactory]:
    """Builds a served API for a fresh tenant. `config_file`: written with the
    config and reloadable. `share_with`: another server ("process") of that Api's
    tenant and config file, on the same Redis."""
    made: list[Api] = []

    async def factory(
        body: str | None = None,
        *,
        extra: str = "",
        config_file: Path | None = None,
        share_with: Api | None = None,
    ) -> Api:
        if share_with is not None:
            tid, clock = share_with.tenant, share_with.clock
            config_file = share_with.service.options.config_path
            assert config_file is not None
            text = config_file.read_text()
        else:
            tid, clock = new_tenant_id(), VirtualClock()
            text = api_toml(tid, body, extra)
            if config_file is not None:
                config_file.write_text(text)
        config = load_config_text(text, str(config_file or "<test>"))
        options = ServiceOptions(redis_url=redis_url, config_path=config_file)
        service = Service(config, options, clock)
        client = TestClient(TestServer(build_api(service)))
        await client.start_server()
        api = Api(client, service, tid, clock)
        made.append(api)
        return api

    yield factory
    for api in made:
        await api.client.close()
    for tid in {api.tenant for api in made}:
        await drop_tenant(redis, tid)
