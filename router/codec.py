"""msgpack codec for the record blobs stored in Redis, and hash-field decoding."""

from __future__ import annotations

import json
from typing import Any

import msgpack

from .model import (
    Agent,
    AgentSpec,
    AgentStatus,
    Contact,
    ContactState,
    Customer,
    NewContact,
)
from .subqueues import base_id


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False)


def contact_blob(new: NewContact) -> bytes:
    return pack(
        {
            "customer": new.customer.to_dict(),
            "subject": new.subject,
            "preview": new.preview,
            "language": new.language,
            "skills": new.skills,
            "attributes": new.attributes,
            "external_id": new.external_id,
        }
    )


def agent_blob(spec: AgentSpec) -> bytes:
    return pack({"name": spec.name, "skills": spec.skills})


def _s(h: dict[bytes, bytes], key: str) -> str | None:
    v = h.get(key.encode())
    if v is None or v == b"":
        return None
    return v.decode()


def _i(h: dict[bytes, bytes], key: str) -> int | None:
    v = _s(h, key)
    return None if v is None else int(float(v))


def decode_contact(tenant: str, contact_id: str, h: dict[bytes, bytes]) -> Contact:
    data = unpack(h[b"data"]) if h.get(b"data") else {}
    why = _s(h, "why")
    return Contact(
        id=contact_id,
        tenant=tenant,
        channel=_s(h, "channel") or "",
        queue=base_id(_s(h, "queue") or ""),
        state=ContactState(_s(h, "state") or "received"),
        stage=_i(h, "stage") or 0,
        priority=_i(h, "prio") or 0,
        created_ms=_i(h, "created") or 0,
        customer=Customer(**data.get("customer", {})),
        subject=data.get("subject", ""),
        preview=data.get("preview", ""),
        language=data.get("language"),
        skills=data.get("skills", {}),
        attributes=data.get("attributes", {}),
        external_id=data.get("external_id"),
        agent=_s(h, "agent"),
        pool=_s(h, "pool"),
        offer_deadline_ms=_i(h, "deadline"),
        assigned_ms=_i(h, "assigned"),
        wrap_up_ms=_i(h, "wrapat"),
        completed_ms=_i(h, "completed"),
        disposition=_s(h, "disposition"),
        abandoned_ms=_i(h, "abandoned"),
        preferred_agent=_s(h, "pref"),
        why=json.loads(why) if why else None,
        first_response_ms=_i(h, "responded"),
        sla_clocks=_sla_clocks(h),
        arrived_ms=_i(h, "arrived"),
        region=_s(h, "region"),
    )


def _sla_clocks(h: dict[bytes, bytes]) -> dict[str, tuple[int, int, int]]:
    """Fields `sl:<code>` = `<due>|<allowed>|<warn>` written by the scripts' start_sla."""
    out: dict[str, tuple[int, int, int]] = {}
    for code in ("a", "f", "r"):
        raw = _s(h, "sl:" + code)
        if raw:
            due, allowed, warn = (int(x) for x in raw.split("|"))
            out[code] = (due, allowed, warn)
    return out


def decode_agent(agent_id: str, h: dict[bytes, bytes], contacts: list[bytes]) -> Agent:
    data = unpack(h[b"data"]) if h.get(b"data") else {}
    capacity: dict[str, int] = {}
    load: dict[str, int] = {}
    for k, v in h.items():
        key = k.decode()
        if key.startswith("cap:") and int(v) > 0:
            capacity[key[4:]] = int(v)
        elif key.startswith("load:") and int(v) > 0:
            load[key[5:]] = int(v)
    return Agent(
        id=agent_id,
        name=data.get("name", ""),
        pool=_s(h, "pool") or "",
        skills=data.get("skills", {}),
        capacity=capacity,
        load=load,
        status=AgentStatus(_s(h, "status") or "offline"),
        reason=_s(h, "reason"),
        idle_since_ms=_i(h, "idle") or 0,
        missed_offers=_i(h, "misses") or 0,
        last_seen_ms=_i(h, "seen") or 0,
        contacts=tuple(sorted(c.decode() for c in contacts)),
    )
