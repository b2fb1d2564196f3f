"""Load Switchboard configuration from TOML into the typed objects of `model.py`.

Validation is strict on purpose: a routing config that silently ignores a typo
(`aging = 30` meant as `aging_s`) misroutes contacts for hours before anyone
notices. So every unknown key, wrong type or impossible value stops the load, and
the first problem found is raised as `ConfigError("<file>: <key path>: <problem>")`
so the operator can jump straight to it.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ..errors import ConfigError
from ..ids import is_valid_id
from . import channels as channel_sections
from . import metrics as metrics_section
from . import sla as sla_section
from . import vendors as vendors_section
from . import webhooks as webhooks_section
from .model import (
    DEFAULT_CHANNELS,
    CalendarConfig,
    Config,
    FullAction,
    LimitsConfig,
    Location,
    PoolConfig,
    PoolKind,
    QueueConfig,
    RetentionConfig,
    Role,
    RoutingConfig,
    StageConfig,
    Strategy,
    TenantConfig,
    TokenConfig,
)

__all__ = ["load_config", "load_config_text"]

_E = TypeVar("_E", bound=StrEnum)

_BARE_KEY = re.compile(r"[A-Za-z0-9_\-]+\Z")
_PERCENT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*\Z")
_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*\Z")
_ID_RULE = "must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit"
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_SHA256_HOW = "make one with: printf %s TOKEN | sha256sum"

_SINGLE_TOP_KEYS = (
    "vendors",
    "calendars",
    "rules",
    "conversations",
    "providers",
    "metrics",
    "webhooks",
    "limits",
    "tenant",
    "routing",
    "retention",
    "pools",
    "queues",
    "tokens",
    "default_queues",
)
_TOP_KEYS = (*_SINGLE_TOP_KEYS, "tenants")
_TENANT_KEYS = ("id", "name", "channels", "timezone")
_MULTI_TENANT_KEYS = (
    "vendors",
    "calendars",
    "rules",
    "conversations",
    "providers",
    "metrics",
    "webhooks",
    "limits",
    "name",
    "channels",
    "timezone",
    "routing",
    "retention",
    "pools",
    "queues",
    "tokens",
    "default_queues",
)
_ROUTING_KEYS = (
    "max_missed_offers",
    "presence_timeout_s",
    "exclusive_channels",
    "wrap_up_s",
    "prefer_last_agent",
    "preferred_agent_s",
    "transfer_wait_s",
    "fallback_queue",
    "cost_currency",
    "exchange_rates",
    "expected_handle_s",
)
_RETENTION_KEYS = ("finished_contact_s", "idempotency_s", "stream_max_len")
_POOL_KEYS = ("kind", "name", "vendor", "location", "open", "regions", "hours")
_QUEUE_KEYS = (
    "name",
    "channels",
    "channel",
    "skills",
    "strategy",
    "aging_s",
    "offer_timeout_s",
    "wrap_up_s",
    "max_size",
    "when_full",
    "overflow_queue",
    "sla",
    "stages",
    "pools",
    "overflow",
    "hours",
    "when_closed",
    "closed_queue",
)
_STAGE_KEYS = ("after_s", "pools", "min_proficiency", "estimated_wait_s", "when_unstaffed")
_TOKEN_KEYS = ("name", "sha256", "roles", "agent", "pool", "requests_per_s", "burst")
_LIMITS_KEYS = ("requests_per_s", "burst")
_MIN_STREAM_LEN = 1000


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; errors name the path as given by the caller."""
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        line = Path(path).read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{source}: line {line}: not valid UTF-8") from exc
    return load_config_text(text, source)


def load_config_text(text: str, source: str = "<string>") -> Config:
    """Parse and validate TOML text; `source` is what error messages call the file."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_message(str(exc), text, source), source=source) from exc
    return _Loader(source).config(doc)


def _syntax_message(message: str, text: str, source: str) -> str:
    """tomllib (3.11) has no line attribute; pull the position out of its message."""
    match = _TOML_POSITION.search(message)
    if match is None:
        return f"{source}: invalid TOML: {message}"
    reason = message[: match.start()]
    if match.group(1) is not None:
        where = f"line {match.group(1)}, column {match.group(2)}"
    else:
        where = f"line {max(1, len(text.splitlines()))} (end of document)"
    return f"{source}: {where}: invalid TOML: {reason}"


def _key(path: str, key: str) -> str:
    """Append a key the way TOML would spell it, so the path can be searched for."""
    part = key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)
    return f"{path}.{part}" if path else part


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, datetime | date | time):
        return "date/time"
    return type(value).__name__


def _expected(expected: str, value: object) -> str:
    got = _type_name(value)
    if isinstance(value, bool | int | float | str):
        return f"expected {expected}, got {got} {value!r}"
    return f"expected {expected}, got {got}"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _choices(values: Iterable[str]) -> str:
    return ", ".join(values) or "(none)"


@dataclass(frozen=True)
class _Stage:
    """A stage as written, with the paths needed to point at its parts."""

    path: str
    after_s: float
    after_path: str
    pools: tuple[str, ...]
    pool_paths: tuple[str, ...]
    pools_path: str
    min_proficiency: int | None
    min_proficiency_path: str
    estimated_wait_s: float | None = None
    estimated_wait_path: str = ""
    when_unstaffed: bool = False
    when_unstaffed_path: str = ""


class _Loader:
    """Walks the parsed document; every check knows its key path for the error."""

    def __init__(self, source: str) -> None:
        self.source = source
        # sha256 -> key path of its first definition; a token maps to one tenant only.
        self.token_paths: dict[str, str] = {}

    # -- primitives ---------------------------------------------------------------

    def fail(self, path: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {path}: {problem}", source=self.source, path=path)

    def keys(self, table: Mapping[str, object], path: str, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in table:
            if key not in allowed:
                self.fail(
                    _key(path, key), f"unknown key; allowed keys: {', '.join(sorted(allowed))}"
                )

    def table(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, _expected("table", value))
        return value

    def array(self, value: object, path: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(path, _expected("array", value))
        return value

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            self.fail(path, _expected("string", value))
        return value

    def boolean(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, _expected("boolean", value))
        return value

    def integer(self, value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, _expected("integer", value))
        return value

    def number(self, value: object, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, _expected("number", value))
        if not math.isfinite(value):
            self.fail(path, "must be a finite number")
        return float(value)

    def ident(self, value: object, path: str, what: str) -> str:
        if not isinstance(value, str):
            self.fail(path, _expected("string", value))
        if not is_valid_id(value):
            self.fail(path, f"invalid {what} id {value!r}: {_ID_RULE}")
        return value

    def choice(self, value: object, path: str, enum: type[_E]) -> _E:
        text = self.string(value, path)
        try:
            return enum(text)
        except ValueError:
            allowed = ", ".join(m.value for m in enum)
            self.fail(path, f"must be one of {allowed}, got {text!r}")

    def opt_number(
        self, table: Mapping[str, object], path: str, key: str, default: float, *, gt: float
    ) -> float:
        """A number that must be strictly above `gt`."""
        if key not in table:
            return default
        p = _key(path, key)
        value = self.number(table[key], p)
        if not value > gt:
            self.fail(p, f"must be > {_fmt(gt)}")
        return value

    def opt_nonneg(self, table: Mapping[str, object], path: str, key: str, default: float) -> float:
        if key not in table:
            return default
        p = _key(path, key)
        value = self.number(table[key], p)
        if value < 0:
            self.fail(p, "must be >= 0")
        return value

    def opt_int(
        self, table: Mapping[str, object], path: str, key: str, default: int, *, ge: int
    ) -> int:
        if key not in table:
            return default
        p = _key(path, key)
        value = self.integer(table[key], p)
        if value < ge:
            self.fail(p, f"must be >= {ge}")
        return value

    def opt_string(self, table: Mapping[str, object], path: str, key: str) -> str:
        return self.string(table[key], _key(path, key)) if key in table else ""

    def level(self, value: object, path: str) -> int:
        """Skill proficiency: the 1..5 scale agents are rated on."""
        level = self.integer(value, path)
        if not 1 <= level <= 5:
            self.fail(path, "must be between 1 and 5")
        return level

    def channel_list(
        self, value: object, path: str, channels: tuple[str, ...], *, non_empty: bool
    ) -> tuple[str, ...]:
        items = self.array(value, path)
        if non_empty and not items:
            self.fail(path, "must list at least one channel")
        out: list[str] = []
        for i, item in enumerate(items):
            p = _index(path, i)
            out.append(self.channel(item, p, channels))
            if out[-1] in out[:-1]:
                self.fail(p, f"channel {out[-1]!r} is listed twice")
        return tuple(out)

    def channel(self, value: object, path: str, channels: tuple[str, ...]) -> str:
        name = self.string(value, path)
        if name not in channels:
            self.fail(path, f"unknown channel {name!r}; tenant channels: {_choices(channels)}")
        return name

    # -- document -------------------------------------------------------------------

    def config(self, doc: dict[str, Any]) -> Config:
        if "tenants" in doc:
            for key in doc:
                if key in _SINGLE_TOP_KEYS:
                    self.fail(
                        key,
                        "cannot be combined with [tenants.<id>]; move it into the tenant's table",
                    )
            self.keys(doc, "", _TOP_KEYS)
            return Config(tenants=self.multi(doc["tenants"]), source=self.source)
        self.keys(doc, "", _TOP_KEYS)
        if "tenant" not in doc:
            self.fail(
                "tenant",
                "missing; a single-tenant file needs a [tenant] table with an id "
                "(or use [tenants.<id>] tables for several tenants)",
            )
        meta = self.table(doc["tenant"], "tenant")
        self.keys(meta, "tenant", _TENANT_KEYS)
        if "id" not in meta:
            self.fail("tenant.id", "required")
        tid = self.ident(meta["id"], "tenant.id", "tenant")
        tenant = self.tenant(tid, meta, "tenant", doc, "")
        return Config(tenants={tid: tenant}, source=self.source)

    def multi(self, value: object) -> dict[str, TenantConfig]:
        tenants = self.table(value, "tenants")
        if not tenants:
            self.fail("tenants", "must define at least one tenant")
        out: dict[str, TenantConfig] = {}
        for raw_id, raw in tenants.items():
            path = _key("tenants", raw_id)
            tid = self.ident(raw_id, path, "tenant")
            body = self.table(raw, path)
            self.keys(body, path, _MULTI_TENANT_KEYS)
            out[tid] = self.tenant(tid, body, path, body, path)
        return out

    def tenant(
        self,
        tid: str,
        meta: Mapping[str, object],
        meta_path: str,
        body: Mapping[str, object],
        body_path: str,
    ) -> TenantConfig:
        """`meta` holds name/channels, `body` the rest; one table in multi-tenant files."""
        name = self.opt_string(meta, meta_path, "name")
        channels = DEFAULT_CHANNELS
        if "channels" in meta:
            channels = self.tenant_channels(meta["channels"], _key(meta_path, "channels"))
        routing = self.routing(body.get("routing", {}), _key(body_path, "routing"), channels)
        retention = self.retention(body.get("retention", {}), _key(body_path, "retention"))
        pools_path = _key(body_path, "pools")
        pools = self.pools(body.get("pools", {}), pools_path)
        if not pools:
            self.fail(pools_path, "a tenant needs at least one pool")
        zone = metrics_section.timezone(self, meta, meta_path)
        calendars = sla_section.calendars(
            self, body.get("calendars", {}), _key(body_path, "calendars"), zone
        )
        queues_path = _key(body_path, "queues")
        queues = self.queues(body.get("queues", {}), queues_path, channels, pools, calendars)
        if not queues:
            self.fail(queues_path, "a tenant needs at least one queue")
        vendors_path = _key(body_path, "vendors")
        vendors = vendors_section.vendors(
            self,
            body.get("vendors", {}),
            vendors_path,
            tenant_zone=zone,
            channels=channels,
            queues=tuple(queues),
            calendars=calendars,
            raw_calendars=body.get("calendars", {}),
        )
        pools = vendors_section.link_pools(
            self, pools, body.get("pools", {}), pools_path, vendors, vendors_path
        )
        pools = vendors_section.link_pool_hours(
            self, pools, pools_path, vendors, calendars, body.get("calendars", {})
        )
        vendors_section.check_contracts(
            self, queues, body.get("queues", {}), queues_path, pools, vendors, vendors_path
        )
        vendors_section.check_currencies(self, routing, vendors, vendors_path, body_path)
        tokens = self.tokens(body.get("tokens", []), _key(body_path, "tokens"), pools)
        default_queues = self.default_queues(
            body.get("default_queues", {}), _key(body_path, "default_queues"), channels, queues
        )
        twilio, meta_provider = channel_sections.providers(
            self, body.get("providers", {}), _key(body_path, "providers")
        )
        fallback = routing.fallback_queue
        if fallback is not None and fallback not in queues:
            self.fail(
                _key(_key(body_path, "routing"), "fallback_queue"),
                f"unknown queue {fallback!r}; defined queues: {_choices(queues)}",
            )
        return TenantConfig(
            id=tid,
            name=name,
            channels=channels,
            routing=routing,
            retention=retention,
            pools=pools,
            queues=queues,
            tokens=tokens,
            default_queues=default_queues,
            limits=self.limits(body.get("limits", {}), _key(body_path, "limits")),
            rules=channel_sections.rules(
                self, body.get("rules", []), _key(body_path, "rules"), channels, queues
            ),
            conversations=channel_sections.conversations(
                self, body.get("conversations", {}), _key(body_path, "conversations")
            ),
            twilio=twilio,
            meta=meta_provider,
            timezone=zone,
            calendars=calendars,
            vendors=vendors,
            metrics=metrics_section.metrics(
                self, body.get("metrics", {}), _key(body_path, "metrics")
            ),
            webhooks=webhooks_section.webhooks(
                self, body.get("webhooks", {}), _key(body_path, "webhooks")
            ),
        )

    def tenant_channels(self, value: object, path: str) -> tuple[str, ...]:
        items = self.array(value, path)
        if not items:
            self.fail(path, "must list at least one channel")
        out: list[str] = []
        for i, item in enumerate(items):
            p = _index(path, i)
            name = self.ident(item, p, "channel")
            if name in out:
                self.fail(p, f"channel {name!r} is listed twice")
            out.append(name)
        return tuple(out)

    # -- routing / retention ----------------------------------------------------------

    def routing(self, value: object, path: str, channels: tuple[str, ...]) -> RoutingConfig:
        t = self.table(value, path)
        self.keys(t, path, _ROUTING_KEYS)
        d = RoutingConfig()
        if "exclusive_channels" in t:
            exclusive = self.channel_list(
                t["exclusive_channels"], _key(path, "exclusive_channels"), channels, non_empty=False
            )
        else:
            # The default names voice; a tenant without voice must not fail on it.
            exclusive = tuple(c for c in d.exclusive_channels if c in channels)
        wrap_up: dict[str, float] = {}
        if "wrap_up_s" in t:
            wpath = _key(path, "wrap_up_s")
            for ch, seconds in self.table(t["wrap_up_s"], wpath).items():
                p = _key(wpath, ch)
                self.channel(ch, p, channels)
                wrap_up[ch] = self.number(seconds, p)
                if wrap_up[ch] < 0:
                    self.fail(p, "must be >= 0")
        cost_currency: str | None = None
        if "cost_currency" in t:
            cost_currency = self.currency(t["cost_currency"], _key(path, "cost_currency"))
        rates: dict[str, float] = {}
        if "exchange_rates" in t:
            rpath = _key(path, "exchange_rates")
            if cost_currency is None:
                self.fail(rpath, "only allowed with cost_currency")
            for cur, rate in self.table(t["exchange_rates"], rpath).items():
                p = _key(rpath, cur)
                self.currency(cur, p)
                rates[cur] = self.number(rate, p)
                if rates[cur] <= 0:
                    self.fail(p, f"must be > 0 ({cost_currency} per {cur})")
        prefer_last = d.prefer_last_agent
        if "prefer_last_agent" in t:
            prefer_last = self.boolean(t["prefer_last_agent"], _key(path, "prefer_last_agent"))
        return RoutingConfig(
            max_missed_offers=self.opt_int(t, path, "max_missed_offers", d.max_missed_offers, ge=0),
            presence_timeout_s=self.opt_nonneg(t, path, "presence_timeout_s", d.presence_timeout_s),
            exclusive_channels=exclusive,
            wrap_up_s=wrap_up,
            prefer_last_agent=prefer_last,
            preferred_agent_s=self.opt_nonneg(t, path, "preferred_agent_s", d.preferred_agent_s),
            transfer_wait_s=self.opt_nonneg(t, path, "transfer_wait_s", d.transfer_wait_s),
            fallback_queue=(
                self.ident(t["fallback_queue"], _key(path, "fallback_queue"), "queue")
                if "fallback_queue" in t
                else None
            ),
            cost_currency=cost_currency,
            exchange_rates=rates,
            expected_handle_s=self.opt_number(
                t, path, "expected_handle_s", d.expected_handle_s, gt=0
            ),
        )

    def currency(self, value: object, path: str) -> str:
        """An ISO 4217 code, e.g. "EUR"."""
        code = self.string(value, path)
        if re.fullmatch(r"[A-Z]{3}", code) is None:
            self.fail(path, f'bad currency {code[:16]!r}: an ISO 4217 code, e.g. "EUR"')
        return code

    def limits(self, value: object, path: str) -> LimitsConfig:
        t = self.table(value, path)
        self.keys(t, path, _LIMITS_KEYS)
        rate, burst = self.rate(t, path)
        return LimitsConfig(requests_per_s=rate or LimitsConfig.requests_per_s, burst=burst)

    def rate(self, t: Mapping[str, object], path: str) -> tuple[float | None, int | None]:
        """`requests_per_s` (> 0) and `burst` (>= 1), either may be absent."""
        rate: float | None = None
        if "requests_per_s" in t:
            rate = self.opt_number(t, path, "requests_per_s", 0.0, gt=0)
        burst: int | None = None
        if "burst" in t:
            burst = self.opt_int(t, path, "burst", 1, ge=1)
        return rate, burst

    def retention(self, value: object, path: str) -> RetentionConfig:
        t = self.table(value, path)
        self.keys(t, path, _RETENTION_KEYS)
        d = RetentionConfig()
        return RetentionConfig(
            finished_contact_s=self.opt_number(
                t, path, "finished_contact_s", d.finished_contact_s, gt=0
            ),
            idempotency_s=self.opt_number(t, path, "idempotency_s", d.idempotency_s, gt=0),
            stream_max_len=self.opt_int(
                t, path, "stream_max_len", d.stream_max_len, ge=_MIN_STREAM_LEN
            ),
        )

    # -- pools ------------------------------------------------------------------------

    def pools(self, value: object, path: str) -> dict[str, PoolConfig]:
        out: dict[str, PoolConfig] = {}
        for raw_id, raw in self.table(value, path).items():
            out[raw_id] = self.pool(raw_id, raw, _key(path, raw_id))
        return out

    def pool(self, raw_id: str, value: object, path: str) -> PoolConfig:
        pid = self.ident(raw_id, path, "pool")
        t = self.table(value, path)
        self.keys(t, path, _POOL_KEYS)
        kind = PoolKind.INHOUSE
        if "kind" in t:
            kind = self.choice(t["kind"], _key(path, "kind"), PoolKind)
        vendor: str | None = None
        location: Location | None = None
        if kind is PoolKind.OUTSOURCED:
            if "vendor" not in t:
                self.fail(_key(path, "vendor"), 'required when kind = "outsourced"')
            vendor = self.string(t["vendor"], _key(path, "vendor"))
            if not vendor.strip():
                self.fail(_key(path, "vendor"), "must not be empty")
            # the vendor id is checked against [vendors.<id>] by vendors.link_pools,
            # which also fills a missing location with the vendor's
            if "location" in t:
                location = self.choice(t["location"], _key(path, "location"), Location)
        else:
            for key in ("vendor", "location"):
                if key in t:
                    self.fail(_key(path, key), 'only allowed when kind = "outsourced"')
        is_open = True
        if "open" in t:
            is_open = self.boolean(t["open"], _key(path, "open"))
        return PoolConfig(
            id=pid,
            kind=kind,
            name=self.opt_string(t, path, "name"),
            vendor=vendor,
            location=location,
            open=is_open,
            regions=vendors_section.pool_regions(self, t, path, kind),
            hours=vendors_section.pool_hours(self, t, path, kind),
        )

    # -- queues -----------------------------------------------------------------------

    def queues(
        self,
        value: object,
        path: str,
        channels: tuple[str, ...],
        pools: Mapping[str, PoolConfig],
        calendars: Mapping[str, CalendarConfig],
    ) -> dict[str, QueueConfig]:
        raw_queues = self.table(value, path)
        for raw_id in raw_queues:
            self.ident(raw_id, _key(path, raw_id), "queue")
        names = tuple(raw_queues)
        out: dict[str, QueueConfig] = {}
        for qid, raw in raw_queues.items():
            out[qid] = self.queue(qid, raw, _key(path, qid), channels, pools, names, calendars)
        self.overflow_targets(out, path)
        return out

    def queue(
        self,
        qid: str,
        value: object,
        path: str,
        channels: tuple[str, ...],
        pools: Mapping[str, PoolConfig],
        queue_ids: tuple[str, ...],
        calendars: Mapping[str, CalendarConfig],
    ) -> QueueConfig:
        t = self.table(value, path)
        self.keys(t, path, _QUEUE_KEYS)
        d = QueueConfig(id=qid, channels=())

        if "channel" in t and "channels" in t:
            self.fail(_key(path, "channel"), "use either channel or channels, not both")
        if "channel" in t:
            q_channels: tuple[str, ...] = (
                self.channel(t["channel"], _key(path, "channel"), channels),
            )
        elif "channels" in t:
            q_channels = self.channel_list(
                t["channels"], _key(path, "channels"), channels, non_empty=True
            )
        else:
            self.fail(_key(path, "channels"), 'required (or channel = "<name>")')

        skills: dict[str, int] = {}
        if "skills" in t:
            spath = _key(path, "skills")
            for skill, level in self.table(t["skills"], spath).items():
                p = _key(spath, skill)
                self.ident(skill, p, "skill")
                skills[skill] = self.level(level, p)

        stages = self.stages(t, path, pools)

        strategy = d.strategy
        if "strategy" in t:
            strategy = self.choice(t["strategy"], _key(path, "strategy"), Strategy)

        wrap_up: float | None = None
        if "wrap_up_s" in t:
            wrap_up = self.opt_nonneg(t, path, "wrap_up_s", 0.0)

        max_size: int | None = None
        if "max_size" in t:
            max_size = self.opt_int(t, path, "max_size", 0, ge=1)
        when_full = d.when_full
        if "when_full" in t:
            when_full = self.choice(t["when_full"], _key(path, "when_full"), FullAction)
            if max_size is None:
                self.fail(_key(path, "when_full"), "has no effect without max_size")
        overflow_queue: str | None = None
        opath = _key(path, "overflow_queue")
        if when_full is FullAction.OVERFLOW:
            if "overflow_queue" not in t:
                self.fail(opath, 'required when when_full = "overflow"')
            overflow_queue = self.string(t["overflow_queue"], opath)
            if overflow_queue == qid:
                self.fail(opath, f"must name another queue, not {qid!r} itself")
            if overflow_queue not in queue_ids:
                self.fail(
                    opath,
                    f"unknown queue {overflow_queue!r}; defined queues: {_choices(queue_ids)}",
                )
        elif "overflow_queue" in t:
            self.fail(opath, 'only allowed when when_full = "overflow"')
        sla = d.sla
        if "sla" in t:
            sla = sla_section.sla(self, t["sla"], _key(path, "sla"), queue_ids, calendars, qid)
        hours, when_closed, closed_queue = sla_section.hours(
            self, t, path, qid, queue_ids, calendars, q_channels
        )

        return QueueConfig(
            id=qid,
            channels=q_channels,
            skills=skills,
            stages=stages,
            strategy=strategy,
            aging_s=self.opt_number(t, path, "aging_s", d.aging_s, gt=0),
            offer_timeout_s=self.opt_number(t, path, "offer_timeout_s", d.offer_timeout_s, gt=0),
            wrap_up_s=wrap_up,
            max_size=max_size,
            when_full=when_full,
            overflow_queue=overflow_queue,
            sla=sla,
            name=self.opt_string(t, path, "name"),
            hours=hours,
            when_closed=when_closed,
            closed_queue=closed_queue,
        )

    # -- stages -----------------------------------------------------------------------

    def stages(
        self, t: Mapping[str, object], path: str, pools: Mapping[str, PoolConfig]
    ) -> tuple[StageConfig, ...]:
        """Both spellings (`stages`, or `pools` + `overflow`) end as one stage list."""
        raw: list[_Stage] = []
        if "stages" in t:
            spath = _key(path, "stages")
            if "pools" in t or "overflow" in t:
                self.fail(spath, "cannot be combined with pools/overflow; use one form")
            items = self.array(t["stages"], spath)
            if not items:
                self.fail(spath, "must have at least one stage")
            for i, item in enumerate(items):
                raw.append(self.stage(item, _index(spath, i), first=i == 0))
        else:
            ppath = _key(path, "pools")
            if "pools" not in t:
                self.fail(ppath, "required: stage 0 needs at least one pool")
            names, paths = self.pool_names(t["pools"], ppath)
            raw.append(_Stage(path, 0.0, ppath, names, paths, ppath, None, path))
            if "overflow" in t:
                opath = _key(path, "overflow")
                for i, item in enumerate(self.array(t["overflow"], opath)):
                    raw.append(self.stage(item, _index(opath, i), first=False))

        seen: list[str] = []
        cap: int | None = None
        previous_after = 0.0
        previous_wait: float | None = None
        out: list[StageConfig] = []
        for k, stage in enumerate(raw):
            previous_wait = self.stage_triggers(stage, k, previous_wait)
            if k == 0 and not stage.pools:
                self.fail(stage.pools_path, "stage 0 needs at least one pool")
            if k > 0:
                if not stage.after_s > 0:
                    self.fail(stage.after_path, "must be > 0")
                if not stage.after_s > previous_after:
                    self.fail(
                        stage.after_path,
                        f"must be greater than the previous stage's after_s "
                        f"({_fmt(previous_after)})",
                    )
            for name, p in zip(stage.pools, stage.pool_paths, strict=True):
                if name not in pools:
                    self.fail(p, f"unknown pool {name!r}; defined pools: {_choices(pools)}")
                if name in seen:
                    self.fail(p, f"pool {name!r} is repeated; each pool opens at one stage only")
                seen.append(name)
            mp = stage.min_proficiency
            if mp is not None and cap is not None and mp > cap:
                self.fail(
                    stage.min_proficiency_path,
                    f"must not be greater than the previous stage's min_proficiency ({cap}); "
                    "stages only widen",
                )
            lowers = mp is not None and (cap is None or mp < cap)
            if k > 0 and not stage.pools and not lowers:
                self.fail(
                    stage.path,
                    "adds no pool and does not lower min_proficiency; each stage must widen",
                )
            if mp is not None:
                cap = mp
            previous_after = stage.after_s
            out.append(
                StageConfig(
                    stage.after_s, stage.pools, mp, stage.estimated_wait_s, stage.when_unstaffed
                )
            )
        return tuple(out)

    def stage_triggers(self, stage: _Stage, k: int, previous_wait: float | None) -> float | None:
        """Check a stage's early-opening triggers; returns the estimated-wait threshold
        in force after it (later thresholds must be greater)."""
        if k == 0:
            for value, p in (
                (stage.estimated_wait_s, stage.estimated_wait_path),
                (stage.when_unstaffed or None, stage.when_unstaffed_path),
            ):
                if value is not None:
                    self.fail(p, "only an overflow stage may have it: stage 0 opens at once")
            return None
        ew = stage.estimated_wait_s
        if ew is None:
            return previous_wait
        if not ew > 0:
            self.fail(stage.estimated_wait_path, "must be > 0")
        if previous_wait is not None and not ew > previous_wait:
            self.fail(
                stage.estimated_wait_path,
                f"must be greater than an earlier stage's estimated_wait_s ({_fmt(previous_wait)})",
            )
        return ew

    def stage(self, value: object, path: str, *, first: bool) -> _Stage:
        t = self.table(value, path)
        self.keys(t, path, _STAGE_KEYS)
        after_path = _key(path, "after_s")
        if "after_s" in t:
            after = self.number(t["after_s"], after_path)
            if first and after != 0:
                self.fail(after_path, "must be 0: stage 0 opens at once")
        elif first:
            after = 0.0
        else:
            self.fail(after_path, "required")
        pools_path = _key(path, "pools")
        names: tuple[str, ...] = ()
        paths: tuple[str, ...] = ()
        if "pools" in t:
            names, paths = self.pool_names(t["pools"], pools_path)
        elif first:
            self.fail(pools_path, "required: stage 0 needs at least one pool")
        mp_path = _key(path, "min_proficiency")
        mp = self.level(t["min_proficiency"], mp_path) if "min_proficiency" in t else None
        ew_path = _key(path, "estimated_wait_s")
        ew = self.number(t["estimated_wait_s"], ew_path) if "estimated_wait_s" in t else None
        wu_path = _key(path, "when_unstaffed")
        wu = self.boolean(t["when_unstaffed"], wu_path) if "when_unstaffed" in t else False
        return _Stage(
            path, after, after_path, names, paths, pools_path, mp, mp_path, ew, ew_path, wu, wu_path
        )

    def pool_names(self, value: object, path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        items = self.array(value, path)
        names = tuple(self.string(item, _index(path, i)) for i, item in enumerate(items))
        return names, tuple(_index(path, i) for i in range(len(items)))

    def overflow_targets(self, queues: Mapping[str, QueueConfig], path: str) -> None:
        """Needs every queue built: a target's channels and the chains are cross-queue."""
        for qid, queue in queues.items():
            target = queue.overflow_queue
            if target is None:
                continue
            opath = _key(_key(path, qid), "overflow_queue")
            missing = [c for c in queue.channels if c not in queues[target].channels]
            if missing:
                self.fail(opath, f"queue {target!r} does not serve channel {missing[0]!r}")
        for qid, queue in queues.items():
            qpath = _key(path, qid)
            targets: list[tuple[str | None, str]] = [
                (queue.closed_queue, _key(qpath, "closed_queue"))
            ]
            for i, esc in enumerate(queue.sla.escalation):
                targets.append((esc.queue, f"{_key(_key(qpath, 'sla'), 'escalation')}[{i}].queue"))
            for other, opath in targets:
                if other is None:
                    continue
                missing = [c for c in queue.channels if c not in queues[other].channels]
                if missing:
                    self.fail(opath, f"queue {other!r} does not serve channel {missing[0]!r}")
        for qid in queues:
            chain = [qid]
            nxt = queues[qid].overflow_queue
            while nxt is not None and nxt not in chain:
                chain.append(nxt)
                nxt = queues[nxt].overflow_queue
            if nxt == qid:
                self.fail(
                    _key(_key(path, qid), "overflow_queue"),
                    f"overflow cycle: {' -> '.join([*chain, qid])}",
                )
        # a loop of closed queues has nowhere to send a contact when all of them are
        # closed at once: it would be held, which a live contact (voice, chat) cannot be
        for qid in queues:
            chain = [qid]
            nxt = queues[qid].closed_queue
            while nxt is not None and nxt not in chain:
                chain.append(nxt)
                nxt = queues[nxt].closed_queue
            if nxt == qid:
                self.fail(
                    _key(_key(path, qid), "closed_queue"),
                    f"closed_queue cycle: {' -> '.join([*chain, qid])}; the last queue of a "
                    'chain must hold ("wait", not for live channels), refuse, or have no hours',
                )

    # -- tokens and default queues ------------------------------------------------------

    def tokens(
        self, value: object, path: str, pools: Mapping[str, PoolConfig]
    ) -> tuple[TokenConfig, ...]:
        if not isinstance(value, list):  # no value in the message: it may be a token
            self.fail(path, f"expected array of tables ([[{path}]]), got {_type_name(value)}")
        return tuple(self.token(item, _index(path, i), pools) for i, item in enumerate(value))

    def token(self, value: object, path: str, pools: Mapping[str, PoolConfig]) -> TokenConfig:
        if not isinstance(value, dict):  # no value in the message: it may be a token
            self.fail(path, f"expected table, got {_type_name(value)}")
        t: dict[str, Any] = value
        self.keys(t, path, _TOKEN_KEYS)
        sha256 = self.sha256(t, path)
        roles = self.roles(t, path)
        agent: str | None = None
        apath = _key(path, "agent")
        if "agent" in t:
            if Role.AGENT not in roles:
                self.fail(apath, 'only allowed when roles include "agent"')
            agent = self.ident(t["agent"], apath, "agent")
        pool: str | None = None
        ppath = _key(path, "pool")
        if "pool" in t:
            if Role.SUPERVISOR not in roles:
                self.fail(ppath, 'only allowed when roles include "supervisor"')
            pool = self.string(t["pool"], ppath)
            if pool not in pools:
                self.fail(ppath, f"unknown pool {pool!r}; defined pools: {_choices(pools)}")
        rate, burst = self.rate(t, path)
        return TokenConfig(
            sha256=sha256,
            roles=roles,
            name=self.opt_string(t, path, "name"),
            agent=agent,
            pool=pool,
            requests_per_s=rate,
            burst=burst,
        )

    def sha256(self, t: Mapping[str, object], path: str) -> str:
        """The token's digest. The value is never echoed: it may be a pasted secret."""
        p = _key(path, "sha256")
        if "sha256" not in t:
            self.fail(
                p, f"required: the token's SHA-256 as 64 lowercase hex characters; {_SHA256_HOW}"
            )
        raw = t["sha256"]
        if not isinstance(raw, str):
            self.fail(p, f"expected string, got {_type_name(raw)}")
        if _SHA256.match(raw) is None:
            if len(raw) != 64:
                got = f"got {len(raw)} characters"
            elif _SHA256.match(raw.lower()) is not None:
                got = "got uppercase hex"
            else:
                got = "got characters other than 0-9 a-f"
            self.fail(
                p,
                f"must be the token's SHA-256 as 64 lowercase hex characters ({got}); "
                f"{_SHA256_HOW}",
            )
        first = self.token_paths.setdefault(raw, p)
        if first != p:
            self.fail(
                p, f"duplicate token: same sha256 as {first}; a token belongs to exactly one tenant"
            )
        return raw

    def roles(self, t: Mapping[str, object], path: str) -> frozenset[Role]:
        p = _key(path, "roles")
        if "roles" not in t:
            self.fail(p, f"required: a non-empty array of {', '.join(r.value for r in Role)}")
        items = self.array(t["roles"], p)
        if not items:
            self.fail(p, "must list at least one role")
        out: list[Role] = []
        for i, item in enumerate(items):
            ip = _index(p, i)
            role = self.choice(item, ip, Role)
            if role in out:
                self.fail(ip, f"role {role.value!r} is listed twice")
            out.append(role)
        return frozenset(out)

    def default_queues(
        self,
        value: object,
        path: str,
        channels: tuple[str, ...],
        queues: Mapping[str, QueueConfig],
    ) -> dict[str, str]:
        """Channel -> the queue a contact arriving on it joins when none is given."""
        out: dict[str, str] = {}
        for ch, raw in self.table(value, path).items():
            p = _key(path, ch)
            self.channel(ch, p, channels)
            qid = self.string(raw, p)
            if qid not in queues:
                self.fail(p, f"unknown queue {qid!r}; defined queues: {_choices(queues)}")
            if ch not in queues[qid].channels:
                self.fail(
                    p,
                    f"queue {qid!r} does not serve channel {ch!r}; "
                    f"its channels: {_choices(queues[qid].channels)}",
                )
            out[ch] = qid
        return out
