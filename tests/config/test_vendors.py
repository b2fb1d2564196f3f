"""[vendors.<id>] contracts and pools that name them: every key, its default, and
one exact message per rule (file and key path first)."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import load_config, load_config_text
from router.config.model import (
    Location,
    PriceUnit,
    TenantConfig,
    VendorCaps,
    VendorConfig,
    VendorPrice,
    Visibility,
    VisibilityPolicy,
)
from router.errors import ConfigError

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.toml"
SRC = "v.toml"

CALENDARS = """
[calendars.shifts]
hours = { mon = ["08:00-12:00", "13:00-17:00"], sat = ["09:00-13:00"] }
holidays = ["2026-12-25"]

[calendars.utc_shifts]
timezone = "UTC"
hours = { mon = ["00:00-24:00"] }
"""


def doc(vendor: str = 'location = "offshore"', *, pool: str = 'vendor = "acme"') -> str:
    """A tenant whose outsourced pool `far` runs under vendor `acme` (`vendor` is
    the body of [vendors.acme]; `pool` the extra keys of [pools.far])."""
    return f"""
[tenant]
id = "t1"
timezone = "Europe/Madrid"

[pools.inhouse]

[pools.far]
kind = "outsourced"
{pool}

[vendors.acme]
{vendor}
{CALENDARS}
[queues.q1]
channel = "voice"
pools = ["inhouse", "far"]

[queues.q2]
channel = "chat"
pools = ["inhouse"]
"""


def tenant(text: str) -> TenantConfig:
    return load_config_text(text, SRC).tenants["t1"]


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, SRC)
    return str(info.value)


def test_defaults() -> None:
    t = tenant(doc())
    assert t.vendors == {
        "acme": VendorConfig(
            id="acme", location=Location.OFFSHORE, name="acme", timezone="Europe/Madrid"
        )
    }
    v = t.vendors["acme"]
    assert v.hours is None and v.calendar is None  # always open
    assert v.channels is None and v.queues is None  # every channel and queue
    assert v.caps == VendorCaps(None, None, None)
    assert (v.min_per_day, v.min_per_month, v.price, v.sla_target, v.region) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert v.visibility == VisibilityPolicy(Visibility.MASK, Visibility.MASK, ())
    # the pool takes the vendor's location
    assert (t.pools["far"].vendor, t.pools["far"].location) == ("acme", Location.OFFSHORE)
    assert tenant(doc(pool='vendor = "acme"\nlocation = "offshore"')).pools["far"].location is (
        Location.OFFSHORE
    )


def test_every_key() -> None:
    v = tenant(
        doc(
            """name = "Acme BPO"
location = "nearshore"
timezone = "America/Bogota"
hours = "shifts"
channels = ["voice", "chat"]
queues = ["q1"]
max_concurrent = 12
max_per_hour = 100
max_per_day = 800
min_per_day = 300
price_per_contact = 1.75
currency = "USD"
sla_target = "85%"
sla_threshold_s = 25
region = "latam"

[vendors.acme.visibility]
email = "show"
phone = "tokenize"
hide = ["iban", "national_id"]
"""
        )
    ).vendors["acme"]
    assert (v.name, v.location, v.timezone, v.hours) == (
        "Acme BPO",
        Location.NEARSHORE,
        "America/Bogota",
        "shifts",
    )
    # a calendar without its own zone is read in the vendor's
    assert v.calendar is not None and v.calendar.timezone == "America/Bogota"
    assert v.calendar.hours[0] == ((480, 720), (780, 1020))
    assert (v.channels, v.queues) == (("voice", "chat"), ("q1",))
    assert v.caps == VendorCaps(12, 100, 800)
    assert (v.min_per_day, v.min_per_month) == (300, None)
    assert v.price == VendorPrice(1.75, PriceUnit.CONTACT, "USD")
    assert (v.sla_target, v.sla_threshold_s, v.region) == (0.85, 25.0, "latam")
    assert v.visibility == VisibilityPolicy(
        Visibility.SHOW, Visibility.TOKENIZE, ("iban", "national_id")
    )


def test_per_minute_price_monthly_commitment_and_calendar_zone() -> None:
    v = tenant(
        doc(
            'location = "onshore"\nhours = "utc_shifts"\nmin_per_month = 9000\n'
            "price_per_minute = 0.4\nsla_target = 1"
        )
    ).vendors["acme"]
    assert v.timezone == "UTC" and v.calendar is not None and v.calendar.timezone == "UTC"
    assert (v.min_per_day, v.min_per_month) == (None, 9000)
    assert v.price == VendorPrice(0.4, PriceUnit.MINUTE, "EUR")
    assert v.sla_target == 1.0


def test_the_demo_vendors() -> None:
    t = load_config(DEMO).tenants["demo"]
    assert set(t.vendors) == {"costa-contact", "manila-connect"}
    costa, manila = t.vendors["costa-contact"], t.vendors["manila-connect"]
    assert (t.pools["nearshore"].vendor, t.pools["offshore"].vendor) == (
        "costa-contact",
        "manila-connect",
    )
    assert t.pools["offshore"].location is Location.OFFSHORE  # from its vendor
    assert costa.calendar is not None and costa.calendar.timezone == "America/Costa_Rica"
    assert manila.calendar is not None and manila.calendar.timezone == "Asia/Manila"
    assert manila.price == VendorPrice(2.1, PriceUnit.CONTACT, "USD")
    assert costa.visibility.hide == ("iban", "date_of_birth")


V = "vendors.acme"
CASES: list[tuple[str, str, str]] = [
    # the pool side
    (
        "old free-text vendor",
        doc(pool='vendor = "Acme BPO"'),
        "pools.far.vendor: unknown vendor 'Acme BPO' (known vendors: acme); a pool's vendor "
        "is the id of a [vendors.<id>] table holding its contract: declare e.g. "
        '[vendors.acme-bpo] with name = "Acme BPO" and location, then write vendor = '
        '"acme-bpo"',
    ),
    (
        "pool location contradicts the vendor",
        doc(pool='vendor = "acme"\nlocation = "onshore"'),
        "pools.far.location: 'onshore' contradicts vendor 'acme''s location ('offshore'); "
        "leave it out to take the vendor's",
    ),
    (
        "outsourced pool without vendor",
        doc(pool=""),
        'pools.far.vendor: required when kind = "outsourced"',
    ),
    # the vendor
    (
        "vendors not a table",
        "vendors = 3\n" + doc().replace('[vendors.acme]\nlocation = "offshore"', ""),
        "vendors: expected table, got integer 3",
    ),
    (
        "bad vendor id",
        doc().replace("[vendors.acme]", '[vendors."a b"]'),
        "vendors.\"a b\": invalid vendor id 'a b': must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit",
    ),
    (
        "unknown key",
        doc('location = "offshore"\nmax_conc = 3'),
        f"{V}.max_conc: unknown key; allowed keys: channels, currency, fail_after_timeouts, fail_pause_s, hours, location, max_concurrent, max_per_day, max_per_hour, min_per_day, min_per_month, name, price_per_contact, price_per_minute, queues, region, sla_target, sla_threshold_s, timezone, visibility",
    ),
    (
        "fail_after_timeouts negative",
        doc('location = "offshore"\nfail_after_timeouts = -1'),
        f"{V}.fail_after_timeouts: must be >= 0",
    ),
    (
        "fail_pause_s zero",
        doc('location = "offshore"\nfail_pause_s = 0'),
        f"{V}.fail_pause_s: must be > 0",
    ),
    (
        "location required",
        doc('name = "Acme"'),
        f"{V}.location: required: one of onshore, nearshore, offshore",
    ),
    (
        "bad location",
        doc('location = "moon"'),
        f"{V}.location: must be one of onshore, nearshore, offshore, got 'moon'",
    ),
    (
        "name type",
        doc('location = "offshore"\nname = 1'),
        f"{V}.name: expected string, got integer 1",
    ),
    (
        "bad timezone",
        doc('location = "offshore"\ntimezone = "Mars/Base"'),
        f"{V}.timezone: unknown time zone 'Mars/Base'; use an IANA name such as 'Europe/Madrid'",
    ),
    (
        "unknown calendar",
        doc('location = "offshore"\nhours = "nights"'),
        f"{V}.hours: unknown calendar 'nights'; defined calendars: shifts, utc_shifts",
    ),
    (
        "zone contradicts the calendar's own",
        doc('location = "offshore"\nhours = "utc_shifts"\ntimezone = "Asia/Manila"'),
        f"{V}.timezone: 'Asia/Manila' differs from the time zone of calendar 'utc_shifts' ('UTC'); leave one of them out, or make them agree",
    ),
    (
        "unknown channel",
        doc('location = "offshore"\nchannels = ["fax"]'),
        f"{V}.channels[0]: unknown channel 'fax'; tenant channels: voice, chat, email, social, sms",
    ),
    (
        "empty channels",
        doc('location = "offshore"\nchannels = []'),
        f"{V}.channels: must list at least one channel",
    ),
    (
        "unknown queue",
        doc('location = "offshore"\nqueues = ["q9"]'),
        f"{V}.queues[0]: unknown queue 'q9'; defined queues: q1, q2",
    ),
    (
        "queue twice",
        doc('location = "offshore"\nqueues = ["q1", "q1"]'),
        f"{V}.queues[1]: queue 'q1' is listed twice",
    ),
    (
        "empty queues",
        doc('location = "offshore"\nqueues = []'),
        f"{V}.queues: must list at least one queue (leave the key out for every queue)",
    ),
    (
        "cap zero",
        doc('location = "offshore"\nmax_concurrent = 0'),
        f"{V}.max_concurrent: must be >= 1",
    ),
    (
        "cap float",
        doc('location = "offshore"\nmax_per_hour = 1.5'),
        f"{V}.max_per_hour: expected integer, got float 1.5",
    ),
    (
        "hour cap above day cap",
        doc('location = "offshore"\nmax_per_hour = 50\nmax_per_day = 40'),
        f"{V}.max_per_hour: must not be greater than max_per_day (40)",
    ),
    (
        "both commitments",
        doc('location = "offshore"\nmin_per_day = 1\nmin_per_month = 30'),
        f"{V}.min_per_month: use either min_per_day or min_per_month, not both",
    ),
    (
        "commitment above cap",
        doc('location = "offshore"\nmin_per_day = 100\nmax_per_day = 40'),
        f"{V}.min_per_day: must not be greater than max_per_day (40): the commitment could never be met",
    ),
    (
        "commitment zero",
        doc('location = "offshore"\nmin_per_month = 0'),
        f"{V}.min_per_month: must be >= 1",
    ),
    (
        "both prices",
        doc('location = "offshore"\nprice_per_contact = 1\nprice_per_minute = 1'),
        f"{V}.price_per_minute: use either price_per_contact or price_per_minute, not both",
    ),
    (
        "negative price",
        doc('location = "offshore"\nprice_per_contact = -1'),
        f"{V}.price_per_contact: must be >= 0",
    ),
    (
        "price type",
        doc('location = "offshore"\nprice_per_minute = "1"'),
        f"{V}.price_per_minute: expected number, got string '1'",
    ),
    (
        "currency without price",
        doc('location = "offshore"\ncurrency = "USD"'),
        f"{V}.currency: only allowed with price_per_contact or price_per_minute",
    ),
    (
        "bad currency",
        doc('location = "offshore"\nprice_per_contact = 1\ncurrency = "usd"'),
        f"{V}.currency: must be an ISO 4217 code of 3 capital letters, got 'usd'",
    ),
    (
        "sla target above 1",
        doc('location = "offshore"\nsla_target = 1.2'),
        f'{V}.sla_target: must be in (0, 1] or a percentage like "80%"',
    ),
    (
        "sla threshold without target",
        doc('location = "offshore"\nsla_threshold_s = 20'),
        f"{V}.sla_threshold_s: only allowed with sla_target",
    ),
    (
        "sla threshold zero",
        doc('location = "offshore"\nsla_target = 0.8\nsla_threshold_s = 0'),
        f"{V}.sla_threshold_s: must be > 0",
    ),
    (
        "bad region",
        doc('location = "offshore"\nregion = "EU"'),
        f"{V}.region: bad region 'EU': 1-32 characters of a-z 0-9 - starting with a letter, e.g. \"eu\"",
    ),
    (
        "visibility not a table",
        doc('location = "offshore"\nvisibility = "mask"'),
        f"{V}.visibility: expected table, got string 'mask'",
    ),
    (
        "visibility unknown key",
        doc('location = "offshore"\nvisibility = { name = "mask" }'),
        f"{V}.visibility.name: unknown key; allowed keys: email, hide, phone",
    ),
    (
        "bad email policy",
        doc('location = "offshore"\nvisibility = { email = "blur" }'),
        f"{V}.visibility.email: must be one of show, mask, tokenize, got 'blur'",
    ),
    (
        "bad phone policy",
        doc('location = "offshore"\nvisibility = { phone = 1 }'),
        f"{V}.visibility.phone: expected string, got integer 1",
    ),
    (
        "hide twice",
        doc('location = "offshore"\nvisibility = { hide = ["iban", "iban"] }'),
        f"{V}.visibility.hide[1]: attribute 'iban' is listed twice",
    ),
    (
        "bad hidden attribute",
        doc('location = "offshore"\nvisibility = { hide = ["a b"] }'),
        f"{V}.visibility.hide[0]: bad attribute name 'a b': 1-64 characters of A-Z a-z 0-9 _ . -",
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_message(text: str, message: str) -> None:
    assert error_of(text) == f"{SRC}: {message}"


def test_multi_tenant_vendors_live_in_the_tenant_table() -> None:
    text = """
[tenants.a.pools.in]
[tenants.a.pools.bpo]
kind = "outsourced"
vendor = "far"
[tenants.a.vendors.far]
location = "offshore"
[tenants.a.queues.q]
channel = "chat"
pools = ["in", "bpo"]

[tenants.b.pools.in]
[tenants.b.pools.bpo]
kind = "outsourced"
vendor = "far"
[tenants.b.queues.q]
channel = "chat"
pools = ["in"]
"""
    assert error_of(text) == (
        f"{SRC}: tenants.b.pools.bpo.vendor: unknown vendor 'far' (no vendor is declared); "
        "a pool's vendor is the id of a [tenants.b.vendors.<id>] table holding its contract: "
        'declare e.g. [tenants.b.vendors.far] with name = "far" and location, then write '
        'vendor = "far"'
    )
    fixed = text + '[tenants.b.vendors.far]\nlocation = "nearshore"\n'
    config = load_config_text(fixed, SRC)
    assert config.tenants["a"].pools["bpo"].location is Location.OFFSHORE
    assert config.tenants["b"].pools["bpo"].location is Location.NEARSHORE


def test_prices_in_several_currencies_need_rates() -> None:
    second = '\n[vendors.beta]\nlocation = "nearshore"\nprice_per_contact = 2\ncurrency = "USD"\n'
    priced = 'location = "offshore"\nprice_per_contact = 1.5\ncurrency = "EUR"' + second
    with pytest.raises(ConfigError) as info:
        load_config_text(doc(priced), source=SRC)
    assert str(info.value) == (
        f"{SRC}: routing: vendor prices are in EUR, USD: set cost_currency and "
        "exchange_rates so routing can compare them"
    )
    routing = '\n[routing]\ncost_currency = "EUR"\n'
    with pytest.raises(ConfigError) as info:
        load_config_text(doc(priced) + routing, source=SRC)
    assert str(info.value) == (
        f"{SRC}: vendors.beta.currency: USD has no rate in routing.exchange_rates "
        "(units of EUR per USD)"
    )
    rates = routing + "exchange_rates = { USD = 0.9 }\n"
    tenant = load_config_text(doc(priced) + rates, source=SRC).tenants["t1"]
    assert tenant.routing.exchange_rates == {"USD": 0.9}
    assert tenant.vendors["beta"].fail_after_timeouts == 3
