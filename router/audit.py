"""The tenant's audit stream: who of an outsourced pool read which customer's
personal data, and which erasures ran (docs/privacy.md). Entries hold ids and
field names, never the personal data itself.

Entry ids are the engine clock's ms (`<at>-<seq>`), so a time range is an XRANGE;
when the clock is behind the stream's last id (clock skew between processes),
Redis picks the id and `at` still says when.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .keys import TenantKeys

AUDIT_MAXLEN = 200_000  # entries kept per tenant (approximately: the oldest go first)


@dataclass(frozen=True)
class AuditEntry:
    action: str  # "read" | "erase"
    who: str  # the token's name, or "agent <id>"
    at: int  # engine clock, ms
    pool: str = ""
    vendor: str = ""
    agent: str = ""
    contact: str = ""
    fields: tuple[str, ...] = ()
    erasure: str = ""  # erase: the erasure's id
    contacts: int = 0  # erase: how many contacts it cleared

    def fields_map(self) -> dict[str, str | int]:
        return {
            "action": self.action,
            "who": self.who,
            "at": self.at,
            "pool": self.pool,
            "vendor": self.vendor,
            "agent": self.agent,
            "contact": self.contact,
            "fields": ",".join(self.fields),
            "erasure": self.erasure,
            "contacts": self.contacts,
        }


async def append(redis: Redis, keys: TenantKeys, entry: AuditEntry) -> str:
    """Append one entry; returns its stream id."""
    data: Any = entry.fields_map()
    try:
        rid = await redis.xadd(
            keys.audit, data, id=f"{max(entry.at, 0)}-*", maxlen=AUDIT_MAXLEN, approximate=True
        )
    except ResponseError:  # the clock is behind the last entry: let Redis pick the id
        rid = await redis.xadd(keys.audit, data, maxlen=AUDIT_MAXLEN, approximate=True)
    return rid.decode() if isinstance(rid, bytes) else str(rid)


def _entry_json(rid: bytes, raw: dict[bytes, bytes]) -> dict[str, Any]:
    f = {k.decode(): v.decode() for k, v in raw.items()}
    out: dict[str, Any] = {
        "id": rid.decode(),
        "action": f.get("action", ""),
        "at": int(f.get("at") or 0),
        "who": f.get("who", ""),
        "pool": f.get("pool") or None,
        "vendor": f.get("vendor") or None,
        "agent": f.get("agent") or None,
        "contact": f.get("contact") or None,
        "fields": [x for x in f.get("fields", "").split(",") if x],
    }
    if out["action"] == "erase":
        out["erasure"] = f.get("erasure", "")
        out["contacts"] = int(f.get("contacts") or 0)
    return out


async def query(
    redis: Redis,
    keys: TenantKeys,
    start_ms: int,
    end_ms: int,
    *,
    pool: str | None = None,
    vendor: str | None = None,
    contact: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], bool]:
    """Entries with ids in [start_ms, end_ms), oldest first, filtered; and whether
    more matched than `limit`."""
    out: list[dict[str, Any]] = []
    lo = f"{max(start_ms, 0)}-0"
    hi = f"{max(end_ms - 1, 0)}-18446744073709551615"
    if end_ms <= start_ms:
        return [], False
    while True:
        page: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange(  # type: ignore[assignment]
            keys.audit, lo, hi, count=500
        )
        for rid, raw in page:
            e = _entry_json(rid, raw)
            if pool and e["pool"] != pool:
                continue
            if vendor and e["vendor"] != vendor:
                continue
            if contact and e["contact"] != contact:
                continue
            if len(out) == limit:
                return out, True
            out.append(e)
        if len(page) < 500:
            return out, False
        lo = "(" + page[-1][0].decode()
