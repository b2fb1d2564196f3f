"""Request ids and structured logs: echoed ids, access lines, and the JSON/text formats."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from router.api.app import build_api
from router.api.requestlog import (
    ACCESS_LOGGER,
    AccessLogger,
    JsonFormatter,
    TextFormatter,
    request_id_var,
)

from .conftest import Api, ApiFactory

GENERATED = re.compile(r"[0-9a-f]{32}")
TEST_LOGGER = "tests.requestlog"


async def test_a_sane_client_id_is_echoed_on_every_response(make_api: ApiFactory) -> None:
    api = await make_api()
    rid = "abc-1.2_3" + "x" * 119  # 128 characters, the longest kept
    for method, path, status in (
        ("GET", "/healthz", 200),
        ("GET", "/no/such/path", 404),
        ("POST", "/v1/contacts", 401),  # no token: a problem from the auth middleware
        ("DELETE", "/healthz", 405),
    ):
        r = await api.client.request(method, path, headers={"X-Request-Id": rid})
        assert r.status == status, await r.text()
        assert r.headers["X-Request-Id"] == rid, (method, path)


async def test_an_id_is_generated_when_the_client_sends_none(make_api: ApiFactory) -> None:
    api = await make_api()
    ids = []
    for _ in range(2):
        r = await api.client.post(
            "/v1/contacts", json={"channel": "chat"}, headers=api.auth("ingest")
        )
        assert r.status == 201, await r.text()
        ids.append(r.headers["X-Request-Id"])
    assert all(GENERATED.fullmatch(i) for i in ids), ids
    assert ids[0] != ids[1]


@pytest.mark.parametrize(
    "bad",
    ["", "has space", "x" * 129, "a/b", "semi;colon", "quote'd", "ünïcode"],
    ids=["empty", "space", "too-long", "slash", "semicolon", "quote", "non-ascii"],
)
async def test_an_unsafe_client_id_is_replaced(make_api: ApiFactory, bad: str) -> None:
    api = await make_api()
    r = await api.client.get("/healthz", headers={"X-Request-Id": bad})
    assert r.status == 200
    assert GENERATED.fullmatch(r.headers["X-Request-Id"]), r.headers["X-Request-Id"]


# -- logs ------------------------------------------------------------------------


class Captured:
    """Log lines formatted as the server formats them, at the moment they are logged."""

    def __init__(self, formatter: logging.Formatter) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def captured() -> Iterator[Callable[[logging.Formatter], Captured]]:
    made: list[tuple[Captured, list[tuple[logging.Logger, int]]]] = []

    def attach(formatter: logging.Formatter) -> Captured:
        cap = Captured(formatter)
        levels = []
        for name in (ACCESS_LOGGER, TEST_LOGGER, "switchboard.api"):
            logger = logging.getLogger(name)
            levels.append((logger, logger.level))
            logger.setLevel(logging.INFO)
            logger.addHandler(cap.handler)
        made.append((cap, levels))
        return cap

    yield attach
    for cap, levels in made:
        for logger, level in levels:
            logger.removeHandler(cap.handler)
            logger.setLevel(level)


Served = Callable[[Api], Awaitable[TestClient]]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """The API of an existing test service, served as `serve` serves it (our access
    logger), plus a route that logs from inside a request."""
    clients: list[TestClient] = []

    async def serve(api: Api) -> TestClient:
        app = build_api(api.service, manage_service=False)

        async def logs(request: web.Request) -> web.Response:
            logging.getLogger(TEST_LOGGER).info("inside the handler")
            try:
                raise ValueError("boom")
            except ValueError:
                logging.getLogger(TEST_LOGGER).exception("it failed")
            return web.json_response({"ok": True})

        app.router.add_get("/test/logs", logs)
        server = TestServer(app)
        await server.start_server(
            access_log_class=AccessLogger, access_log=logging.getLogger(ACCESS_LOGGER)
        )
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        return client

    yield serve
    for client in clients:
        await client.close()


async def test_json_lines_inside_a_request_carry_its_id(
    make_api: ApiFactory, served: Served, captured: Callable[[logging.Formatter], Captured]
) -> None:
    api = await make_api()
    client = await served(api)
    cap = captured(JsonFormatter())
    r = await client.get("/test/logs", headers={"X-Request-Id": "req-42"})
    assert r.status == 200
    lines = cap.json()
    inside = [line for line in lines if line["logger"] == TEST_LOGGER]
    assert [line["msg"] for line in inside] == ["inside the handler", "it failed"]
    assert all(line["request_id"] == "req-42" for line in inside), inside
    assert inside[0]["level"] == "INFO" and "exception" not in inside[0]
    assert inside[1]["level"] == "ERROR"
    assert "Traceback" in inside[1]["exception"] and "ValueError: boom" in inside[1]["exception"]
    ts = datetime.fromisoformat(inside[0]["ts"])
    assert inside[0]["ts"].endswith("Z") and ts.utcoffset() is not None
    assert abs((datetime.now(UTC) - ts).total_seconds()) < 60
    assert request_id_var.get() is None  # nothing leaks out of the request


async def test_an_access_line_follows_each_response(
    make_api: ApiFactory, served: Served, captured: Callable[[logging.Formatter], Captured]
) -> None:
    api = await make_api()
    client = await served(api)
    cap = captured(JsonFormatter())
    ok = await client.post("/v1/contacts", json={"channel": "chat"}, headers=api.auth("ingest"))
    assert ok.status == 201, await ok.text()
    denied = await client.get("/v1/queues")
    assert denied.status == 401
    access = [line for line in cap.json() if line["logger"] == ACCESS_LOGGER]
    assert len(access) == 2, access
    first, second = access
    assert first["method"] == "POST" and first["path"] == "/v1/contacts"
    assert first["status"] == 201 and first["tenant"] == api.tenant
    assert first["request_id"] == ok.headers["X-Request-Id"]
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert second["status"] == 401 and "tenant" not in second  # not authenticated
    assert second["request_id"] == denied.headers["X-Request-Id"]


async def test_text_lines_name_the_tenant_and_request(
    make_api: ApiFactory, served: Served, captured: Callable[[logging.Formatter], Captured]
) -> None:
    api = await make_api()
    client = await served(api)
    cap = captured(TextFormatter())
    r = await client.post(
        "/v1/contacts",
        json={"channel": "chat"},
        headers={**api.auth("ingest"), "X-Request-Id": "text-1"},
    )
    assert r.status == 201
    (line,) = [x for x in cap.lines() if ACCESS_LOGGER in x]
    assert re.search(
        rf" INFO {ACCESS_LOGGER} POST /v1/contacts 201 [0-9.]+ms tenant={api.tenant} request_id=text-1$",
        line,
    ), line


def test_the_json_formatter_outside_a_request() -> None:
    record = logging.LogRecord("switchboard", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["msg"] == "a b" and out["level"] == "WARNING" and out["logger"] == "switchboard"
    assert "request_id" not in out and "exception" not in out
    token = request_id_var.set("ctx-1")
    try:
        assert json.loads(JsonFormatter().format(record))["request_id"] == "ctx-1"
    finally:
        request_id_var.reset(token)


async def test_a_streamed_response_names_its_request_id_too(make_api: ApiFactory) -> None:
    api = await make_api()
    r = await api.client.put(
        "/v1/agents/a1",
        json={"pool": "inhouse", "capacity": {"chat": 1}},
        headers=api.auth("admin"),
    )
    assert r.status == 201
    async with api.client.get(
        "/v1/agents/a1/events", headers={**api.auth("a1"), "X-Request-Id": "sse-1"}
    ) as stream:
        assert stream.status == 200 and stream.content_type == "text/event-stream"
        assert stream.headers["X-Request-Id"] == "sse-1"
