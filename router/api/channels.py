"""Channel endpoints: provider payloads in, conversations out.

`/v1/channels/{email,chat,voice}` take an ingest token. The provider webhooks
under `/v1/webhooks/{tenant}/...` are public paths authenticated by the
provider's own signature (Twilio's X-Twilio-Signature, Meta's
X-Hub-Signature-256), with the tenant's secret read from the environment
variable its config names. Answers: 201 a new contact, 200 an event on an
existing one, 202 recorded but not routed; Twilio gets TwiML.

A queue outside its hours that refuses new contacts (when_closed = "refuse")
answers the platform endpoints with a 409 problem (`reason` = `queue_closed`,
`opens_at`), so the platform plays its own closed message. A provider cannot
act on that, and would retry: a Twilio call hears `closed_message` and is hung
up, and a Twilio SMS or Meta message is acknowledged and recorded as ignored
with reason `queue_closed` (inbound.ignored).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from adapters import chat as chat_adapter
from adapters import mail, meta, twilio
from adapters import voice as voice_adapter
from adapters.inbound import Inbound, Kind

from ..config.model import Role
from ..conversations import Conversations, Outcome
from ..engine import Engine
from ..errors import PayloadError, QueueClosed
from .auth import principal
from .context import SERVICE, engine_for
from .negotiate import respond
from .problems import ApiError

log = logging.getLogger("switchboard.channels")
routes = web.RouteTableDef()

EMAIL_MAX_BYTES = mail.MAX_BYTES
WEBHOOK_MAX_BYTES = 1024 * 1024
TWIML = "text/xml"


async def _raw(request: web.Request, limit: int) -> bytes:
    """The body, up to `limit` bytes (email may exceed the API's usual cap)."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload too large", f"body: larger than {limit} bytes")
    data = bytearray()
    while chunk := await request.content.read(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise ApiError(413, "payload too large", f"body: larger than {limit} bytes")
    return bytes(data)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise PayloadError(f"body: not valid JSON: {exc}") from None


def _answer(request: web.Request, out: Outcome) -> web.Response:
    return respond(request, out.to_json(), out.status)


async def _receive(engine: Engine, item: Inbound) -> Outcome:
    return await Conversations(engine).receive(item)


async def _provider_receive(engine: Engine, item: Inbound) -> Outcome:
    """A provider webhook's item. A closed queue's refusal is recorded as ignored
    (reason `queue_closed`) and answered 202: the provider must not retry it."""
    try:
        return await _receive(engine, item)
    except QueueClosed as exc:
        await engine.record_ignored(
            item.channel, "queue_closed", item.provider, item.external_id or ""
        )
        log.info(
            "not routed: %s %s (queue %s closed until %s)",
            item.channel,
            item.external_id or "",
            exc.details.get("queue", ""),
            exc.details.get("opens_at", ""),
        )
        return Outcome(202, None, reason="queue_closed")


@routes.post("/v1/channels/chat")
async def chat(request: web.Request) -> web.Response:
    who = principal(request, Role.INGEST)
    item = chat_adapter.parse_event(_json(await _raw(request, WEBHOOK_MAX_BYTES)))
    return _answer(request, await _receive(engine_for(request, who), item))


@routes.post("/v1/channels/voice")
async def voice(request: web.Request) -> web.Response:
    who = principal(request, Role.INGEST)
    item = voice_adapter.parse_event(_json(await _raw(request, WEBHOOK_MAX_BYTES)))
    return _answer(request, await _receive(engine_for(request, who), item))


@routes.post("/v1/channels/email")
async def email(request: web.Request) -> web.Response:
    """A raw RFC 5322 message, as a mail server pipe or a raw-MIME forward sends it."""
    who = principal(request, Role.INGEST)
    if request.content_type not in ("message/rfc822", "application/octet-stream"):
        raise ApiError(415, "unsupported media type", "send the raw message as message/rfc822")
    raw = await _raw(request, EMAIL_MAX_BYTES)
    # the stdlib parser costs about 2 us a byte: keep big messages off the event loop
    item = await asyncio.to_thread(mail.parse_message, raw)
    return _answer(request, await _receive(engine_for(request, who), item))


# -- provider webhooks (public paths, signed) ---------------------------------------


def _tenant_engine(request: web.Request) -> Engine:
    engine = request.app[SERVICE].engines.get(request.match_info["tenant"])
    if engine is None:
        raise ApiError(404, "not found", "no such tenant")
    return engine


def _secret(env: str) -> str:
    value = os.environ.get(env, "")
    if not value:
        log.error("webhook secret missing: set the environment variable %s", env)
        raise ApiError(503, "unavailable", "this provider is not set up on the server yet")
    return value


def _twiml(text: str) -> web.Response:
    return web.Response(text=text, content_type=TWIML)


async def _twilio_form(request: web.Request, engine: Engine) -> dict[str, str]:
    cfg = engine.tenant.twilio
    if cfg is None:
        raise ApiError(404, "not found", "Twilio is not configured for this tenant")
    raw = await _raw(request, WEBHOOK_MAX_BYTES)
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"body: not a valid form: {exc}") from None
    base = cfg.public_base_url
    url = f"{base}{request.path_qs}" if base else str(request.url)
    twilio.verify_signature(
        url, pairs, request.headers.get("X-Twilio-Signature"), _secret(cfg.auth_token_env)
    )
    return dict(pairs)


@routes.post("/v1/webhooks/{tenant}/twilio/voice")
async def twilio_voice(request: web.Request) -> web.Response:
    engine = _tenant_engine(request)
    item = twilio.parse_voice(await _twilio_form(request, engine))
    out = await _provider_receive(engine, item)
    cfg = engine.tenant.twilio
    assert cfg is not None
    if out.reason == "queue_closed" and out.contact_id is None:
        return _twiml(twilio.twiml_closed(cfg.closed_message))
    if out.status == 201 and item.kind is Kind.MESSAGE and out.queue:
        return _twiml(
            twilio.twiml_enqueue(
                out.queue,
                wait_url=cfg.wait_url,
                hold_message=cfg.hold_message,
                # the caller leaving Twilio's queue comes back here as QueueResult
                action=request.path,
            )
        )
    return _twiml(twilio.twiml_empty())


@routes.post("/v1/webhooks/{tenant}/twilio/sms")
async def twilio_sms(request: web.Request) -> web.Response:
    engine = _tenant_engine(request)
    item = twilio.parse_sms(await _twilio_form(request, engine))
    await _provider_receive(engine, item)
    return _twiml(twilio.twiml_empty())


@routes.get("/v1/webhooks/{tenant}/meta")
async def meta_subscribe(request: web.Request) -> web.Response:
    engine = _tenant_engine(request)
    cfg = engine.tenant.meta
    if cfg is None:
        raise ApiError(404, "not found", "Meta is not configured for this tenant")
    challenge = meta.verify_subscription(dict(request.query), _secret(cfg.verify_token_env))
    return web.Response(text=challenge, content_type="text/plain")


@routes.post("/v1/webhooks/{tenant}/meta")
async def meta_webhook(request: web.Request) -> web.Response:
    engine = _tenant_engine(request)
    cfg = engine.tenant.meta
    if cfg is None:
        raise ApiError(404, "not found", "Meta is not configured for this tenant")
    raw = await _raw(request, WEBHOOK_MAX_BYTES)
    meta.verify_signature(
        raw, request.headers.get("X-Hub-Signature-256"), _secret(cfg.app_secret_env)
    )
    items = meta.parse_webhook(_json(raw))
    results = [await _provider_receive(engine, item) for item in items]
    # Meta wants a fast 200 for the whole batch; each item's outcome is in the body
    return web.json_response({"results": [r.to_json() | {"status": r.status} for r in results]})
