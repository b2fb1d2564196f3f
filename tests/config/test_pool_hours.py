"""`[pools.<id>] hours`: a site's own hours, overriding its vendor's."""

from __future__ import annotations

import pytest

from router.config import load_config_text
from router.config.model import TenantConfig
from router.errors import ConfigError
from router.pool_hours import hours_of, in_hours

SRC = "h.toml"


def doc(pool: str = "", *, inhouse: str = "") -> str:
    """Vendor acme (Manila, office hours) runs sites `manila` and `far`; `pool` holds
    extra keys of [pools.far], `inhouse` of [pools.inhouse]."""
    return f"""
[tenant]
id = "t1"
timezone = "Europe/Madrid"

[pools.inhouse]
{inhouse}

[pools.manila]
kind = "outsourced"
vendor = "acme"

[pools.far]
kind = "outsourced"
vendor = "acme"
{pool}

[vendors.acme]
location = "offshore"
timezone = "Asia/Manila"
hours = "office"

[calendars.office]
hours = {{ mon = ["09:00-17:00"] }}

[calendars.cr_shifts]
timezone = "America/Costa_Rica"
hours = {{ mon = ["08:00-12:00", "13:00-17:00"] }}

[queues.q1]
channel = "chat"
pools = ["inhouse", "manila", "far"]
"""


def tenant(text: str) -> TenantConfig:
    return load_config_text(text, SRC).tenants["t1"]


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, SRC)
    return str(info.value)


def test_a_site_without_hours_keeps_its_vendors() -> None:
    t = tenant(doc())
    far = t.pools["far"]
    assert far.hours is None and far.calendar is None
    cal = hours_of(t, far)
    # the vendor's calendar, read in the vendor's zone (it sets none of its own)
    assert cal is not None and (cal.id, cal.timezone) == ("office", "Asia/Manila")
    assert hours_of(t, t.pools["inhouse"]) is None


def test_a_site_with_its_own_hours_and_zone() -> None:
    t = tenant(doc('hours = "cr_shifts"'))
    far = t.pools["far"]
    assert far.hours == "cr_shifts"
    cal = hours_of(t, far)
    assert cal is not None and (cal.id, cal.timezone) == ("cr_shifts", "America/Costa_Rica")
    assert hours_of(t, t.pools["manila"]) == t.vendors["acme"].calendar
    # Monday 2026-11-23 10:00 in Costa Rica is 16:00 UTC, past 17:00 in Manila
    ms = 1_795_449_600_000
    assert in_hours(t, far, ms) and not in_hours(t, t.pools["manila"], ms)
    assert in_hours(t, t.pools["inhouse"], ms)  # no hours: always


def test_a_calendar_without_a_zone_is_read_in_the_vendors() -> None:
    t = tenant(doc('hours = "office"'))
    cal = t.pools["far"].calendar
    assert cal is not None and cal.timezone == "Asia/Manila"
    assert t.calendars["office"].timezone == "Europe/Madrid"  # the tenant's, elsewhere


def test_an_unknown_calendar() -> None:
    assert error_of(doc('hours = "night"')) == (
        "h.toml: pools.far.hours: unknown calendar 'night'; defined calendars: office, cr_shifts"
    )


def test_not_a_string() -> None:
    assert error_of(doc("hours = 3")).startswith("h.toml: pools.far.hours: ")


def test_an_inhouse_pool_has_no_hours_of_its_own() -> None:
    assert error_of(doc(inhouse='hours = "office"')) == (
        'h.toml: pools.inhouse.hours: only allowed when kind = "outsourced"; an in-house '
        "pool follows its queues' hours"
    )
