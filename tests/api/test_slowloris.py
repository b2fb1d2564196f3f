"""Slow clients: a request head or body that trickles in is cut off, a normal
keep-alive client is not. Raw sockets against a real served app, with the
timeouts set as `serve --header-timeout/--body-timeout` sets them, but small."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from router.api.app import build_api
from router.api.bodies import BODY_TIMEOUT

from .conftest import Api, ApiFactory

TIMEOUT_S = 0.5
# generous upper bounds: only "cut off at about the timeout, not never" matters
CUT_BY_S = 3.0


@pytest.fixture
async def slow(make_api: ApiFactory) -> AsyncIterator[tuple[Api, TestServer]]:
    api = await make_api()
    app = build_api(api.service, manage_service=False)
    app[BODY_TIMEOUT] = TIMEOUT_S
    server = TestServer(app)
    await server.start_server(keepalive_timeout=TIMEOUT_S)  # what --header-timeout sets
    yield api, server
    await server.close()


async def _connect(server: TestServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert server.port is not None
    return await asyncio.open_connection(server.host, server.port)


async def _trickle(writer: asyncio.StreamWriter, data: bytes, every_s: float = 0.1) -> None:
    """One byte at a time, for as long as the server keeps the connection."""
    try:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every_s)
    except ConnectionError:
        pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def _closed_after(reader: asyncio.StreamReader) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and what it sent first."""
    start = time.monotonic()
    try:
        data = await asyncio.wait_for(reader.read(), CUT_BY_S + 2)
    except ConnectionResetError:
        data = b""
    return time.monotonic() - start, data


async def test_a_trickled_request_head_is_cut_off(slow: tuple[Api, TestServer]) -> None:
    _, server = slow
    reader, writer = await _connect(server)
    sender = asyncio.create_task(
        _trickle(writer, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200)
    )
    try:
        elapsed, data = await _closed_after(reader)
    finally:
        sender.cancel()
        writer.close()
    assert data == b"", data  # closed without an answer
    assert TIMEOUT_S * 0.8 <= elapsed <= CUT_BY_S, elapsed
    assert not sender.done() or sender.cancelled()  # it was still sending when cut off


async def test_a_silent_connection_is_cut_off(slow: tuple[Api, TestServer]) -> None:
    _, server = slow
    reader, writer = await _connect(server)
    elapsed, data = await _closed_after(reader)
    writer.close()
    assert data == b"" and TIMEOUT_S * 0.8 <= elapsed <= CUT_BY_S, (elapsed, data)


async def test_a_trickled_body_gets_408(slow: tuple[Api, TestServer]) -> None:
    api, server = slow
    body = json.dumps(
        {"channel": "chat", "external_id": "slow-1", "customer": {"name": "x" * 200}}
    ).encode()
    token = api.auth("ingest")["Authorization"]
    head = (
        "POST /v1/contacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: {token}\r\nContent-Length: {len(body)}\r\n"
        "X-Request-Id: slow-body\r\n\r\n"
    ).encode()
    reader, writer = await _connect(server)
    writer.write(head)
    start = time.monotonic()
    sender = asyncio.create_task(_trickle(writer, body))
    try:
        status, headers, payload = await asyncio.wait_for(_read_response(reader), CUT_BY_S)
    finally:
        sender.cancel()
        writer.close()
    elapsed = time.monotonic() - start
    assert status == 408, payload
    assert TIMEOUT_S * 0.8 <= elapsed <= CUT_BY_S, elapsed
    assert headers["content-type"].startswith("application/problem+json")
    assert headers["x-request-id"] == "slow-body"
    problem = json.loads(payload)
    assert problem["title"] == "request timeout" and problem["field"] == "body"
    assert problem["detail"].startswith("body: ")
    r = await api.client.get("/v1/contacts?external_id=slow-1", headers=api.auth("supervisor"))
    assert r.status == 200 and (await r.json())["contacts"] == []  # nothing was created


async def test_a_keep_alive_client_is_unaffected(slow: tuple[Api, TestServer]) -> None:
    """Requests on one connection, each within the timeout of the previous answer,
    for longer than the timeout in all: the timer restarts after every response.
    A body that arrives in two parts, in time, is read whole."""
    api, server = slow
    reader, writer = await _connect(server)
    token = api.auth("ingest")["Authorization"]
    start = time.monotonic()
    for i in range(4):
        await asyncio.sleep(TIMEOUT_S * 0.6)
        body = json.dumps({"channel": "chat", "external_id": f"ka-{i}"}).encode()
        writer.write(
            (
                "POST /v1/contacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Authorization: {token}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body[:5]
        )
        await writer.drain()
        await asyncio.sleep(TIMEOUT_S * 0.4)
        writer.write(body[5:])
        status, headers, payload = await asyncio.wait_for(_read_response(reader), CUT_BY_S)
        assert status == 201, payload
        assert headers.get("connection", "").lower() != "close"
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = await asyncio.wait_for(_read_response(reader), CUT_BY_S)
    assert status == 200
    assert time.monotonic() - start > 3 * TIMEOUT_S
    writer.close()
