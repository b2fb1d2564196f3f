"""Typed configuration objects. `loader.py` builds them from TOML and validates them.

Everything here is immutable after load; the engine derives its Redis-side routing
config (queue hashes, agent eligibility) from these objects at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

DEFAULT_CHANNELS: tuple[str, ...] = ("voice", "chat", "email", "social", "sms")


class PoolKind(StrEnum):
    INHOUSE = "inhouse"
    OUTSOURCED = "outsourced"


class Location(StrEnum):
    ONSHORE = "onshore"
    NEARSHORE = "nearshore"
    OFFSHORE = "offshore"


class Strategy(StrEnum):
    LONGEST_IDLE = "longest_idle"
    LEAST_OCCUPIED = "least_occupied"
    HIGHEST_PROFICIENCY = "highest_proficiency"


class FullAction(StrEnum):
    REJECT = "reject"
    OVERFLOW = "overflow"


@dataclass(frozen=True)
class PoolConfig:
    id: str
    kind: PoolKind = PoolKind.INHOUSE
    name: str = ""
    vendor: str | None = None  # outsourced: the id of its [vendors.<id>]
    location: Location | None = None  # outsourced: defaults to its vendor's
    open: bool = True  # initial gate state
    # outsourced: a calendar id of the site's own hours, overriding its vendor's
    # (one vendor's sites in several time zones); None: the vendor's hours
    hours: str | None = None
    calendar: CalendarConfig | None = None  # that calendar, resolved by the loader
    # in-house: the data-residency regions it may serve (None: every region);
    # an outsourced pool serves its vendor's region only (docs/vendors.md)
    regions: tuple[str, ...] | None = None


@dataclass(frozen=True)
class StageConfig:
    """One overflow stage. Stage 0 opens at once; later ones after `after_s` of waiting.

    Stages only widen: `pools` are added to the previous stages' pools and
    `min_proficiency`, when set, caps every skill requirement of the queue.

    A later stage may also open sooner (docs/vendors.md, "Overflow triggers"):
    `estimated_wait_s` puts a new contact whose estimated wait exceeds it at this
    stage on arrival; `when_unstaffed` opens it for every waiting contact while
    each pool of the earlier stages is closed or has nobody signed in on the lane.
    """

    after_s: float
    pools: tuple[str, ...] = ()
    min_proficiency: int | None = None
    estimated_wait_s: float | None = None
    when_unstaffed: bool = False


class ClosedAction(StrEnum):
    """What a queue does with a new contact outside its hours."""

    WAIT = "wait"  # held until the next opening, then queued
    OVERFLOW = "overflow"  # sent to the queue's closed_queue
    REFUSE = "refuse"  # refused with reason queue_closed (nothing is written)


class SlaKind(StrEnum):
    ANSWER = "answer"  # live channels: answered (accepted) within threshold_s
    FIRST_RESPONSE = "first_response"  # async channels: first reply within first_response_s
    RESOLUTION = "resolution"  # completed within resolution_s


class EscalationAction(StrEnum):
    RAISE_PRIORITY = "raise_priority"
    NEXT_STAGE = "next_stage"
    MOVE_QUEUE = "move_queue"
    NOTIFY = "notify"


LIVE_CHANNELS: tuple[str, ...] = ("voice", "chat")  # answer clock; every other: first response


@dataclass(frozen=True)
class CalendarConfig:
    """Business hours: a time zone, weekly open ranges (split shifts) and holidays."""

    id: str
    timezone: str = "UTC"
    # weekday (0 = Monday) -> open ranges in minutes from local midnight, sorted,
    # not overlapping; (0, 1440) is the whole day
    hours: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7
    holidays: frozenset[date] = frozenset()


@dataclass(frozen=True)
class SlaPriority:
    """Targets for contacts of priority >= `min` (the highest matching `min` wins)."""

    min: int
    threshold_s: float | None = None
    first_response_s: float | None = None
    resolution_s: float | None = None


@dataclass(frozen=True)
class Escalation:
    """An action taken when an SLA clock of the queue warns or breaches."""

    on: str  # "warning" | "breach"
    action: EscalationAction
    sla: SlaKind | None = None  # None: the contact's main clock (answer or first response)
    by: int = 1  # raise_priority: levels added
    queue: str | None = None  # move_queue: the target
    webhook: str | None = None  # notify: a webhook subscription id


@dataclass(frozen=True)
class SlaTarget:
    threshold_s: float = 20.0
    target: float = 0.8  # share in 0..1
    warn_at: float = 0.8  # the warning fires at this share of the time allowed
    first_response_s: float | None = None  # async channels' first-response clock
    resolution_s: float | None = None
    calendar: str | None = None  # count business time of this calendar only
    priority: tuple[SlaPriority, ...] = ()  # sorted by min, ascending
    escalation: tuple[Escalation, ...] = ()
    # True when the queue's config has an `sla` table: then SLA timers run for its
    # contacts (warning, breach, escalation); a queue without one only reports
    # its service level against the default target
    timed: bool = False


@dataclass(frozen=True)
class QueueConfig:
    id: str
    channels: tuple[str, ...]
    skills: dict[str, int] = field(default_factory=dict)  # skill -> minimum level 1..5
    stages: tuple[StageConfig, ...] = ()  # stage 0 first (after_s == 0)
    strategy: Strategy = Strategy.LONGEST_IDLE
    aging_s: float = 60.0  # one priority level is worth this many seconds of waiting
    offer_timeout_s: float = 20.0
    wrap_up_s: float | None = None  # None: use the tenant's per-channel default
    max_size: int | None = None
    when_full: FullAction = FullAction.REJECT
    overflow_queue: str | None = None  # required when when_full is overflow
    sla: SlaTarget = field(default_factory=SlaTarget)
    name: str = ""
    hours: str | None = None  # a calendar id: the queue is open in its hours only
    when_closed: ClosedAction = ClosedAction.WAIT
    closed_queue: str | None = None  # required when when_closed is overflow

    def pools_at(self, stage: int) -> tuple[str, ...]:
        """Pools eligible at `stage`: the union of stages 0..stage, in order of opening."""
        seen: list[str] = []
        for s in self.stages[: stage + 1]:
            for p in s.pools:
                if p not in seen:
                    seen.append(p)
        return tuple(seen)

    def requirement_at(self, stage: int) -> dict[str, int]:
        """Skill levels required at `stage`, after every relaxation up to it."""
        cap: int | None = None
        for s in self.stages[: stage + 1]:
            if s.min_proficiency is not None:
                cap = s.min_proficiency if cap is None else min(cap, s.min_proficiency)
        if cap is None:
            return dict(self.skills)
        return {k: min(v, cap) for k, v in self.skills.items()}


@dataclass(frozen=True)
class RoutingConfig:
    max_missed_offers: int = 3  # consecutive misses before the agent is set away; 0 = never
    presence_timeout_s: float = 120.0  # no heartbeat for this long: offline; 0 = disabled
    exclusive_channels: tuple[str, ...] = ("voice",)  # handled alone (cross-channel rule)
    wrap_up_s: dict[str, float] = field(default_factory=dict)  # per channel default
    prefer_last_agent: bool = False
    preferred_agent_s: float = 20.0  # how long a contact waits for its preferred agent
    transfer_wait_s: float = 30.0  # how long a transfer waits for a named agent
    # Where contacts go when a config reload removes their queue (then the channel's
    # default queue, when this one does not serve the contact's channel).
    fallback_queue: str | None = None
    # Vendor prices are compared in one currency to prefer the cheapest vendor:
    # `exchange_rates` gives units of `cost_currency` per unit of another
    # (docs/vendors.md "Cost and commitments").
    cost_currency: str | None = None
    exchange_rates: dict[str, float] = field(default_factory=dict)
    # minutes per contact when comparing a price per minute with one per contact
    expected_handle_s: float = 300.0


class Role(StrEnum):
    INGEST = "ingest"  # create contacts and channel events
    AGENT = "agent"  # offers and contacts of agents
    SUPERVISOR = "supervisor"  # read queues, metrics and contacts
    ADMIN = "admin"  # agents, configuration


@dataclass(frozen=True)
class TokenConfig:
    """An API token. Only its SHA-256 is stored; the token itself is never in config."""

    sha256: str  # lowercase hex digest of the token
    roles: frozenset[Role]
    name: str = ""
    agent: str | None = None  # an agent token bound to one agent; None: platform-wide
    pool: str | None = None  # a supervisor token scoped to one pool
    requests_per_s: float | None = None  # overrides the tenant's [limits]
    burst: int | None = None


@dataclass(frozen=True)
class LimitsConfig:
    """Per-token request rate: a token bucket refilled at `requests_per_s`."""

    requests_per_s: float = 100.0
    burst: int | None = None  # bucket size; default: two seconds' worth

    def bucket(self, token: TokenConfig | None = None) -> tuple[float, int]:
        """(rate, burst) for `token`, its own settings first."""
        rate = self.requests_per_s
        burst = self.burst
        if token is not None and token.requests_per_s is not None:
            rate = token.requests_per_s
            burst = token.burst
        if token is not None and token.burst is not None:
            burst = token.burst
        return rate, burst if burst is not None else max(1, round(2 * rate))


@dataclass(frozen=True)
class RetentionConfig:
    finished_contact_s: float = 86_400.0
    idempotency_s: float = 86_400.0
    stream_max_len: int = 1_000_000  # hard cap when no consumer group holds entries back


@dataclass(frozen=True)
class RuleMatch:
    """What a routing rule looks at. Every given condition must hold; within one
    condition, any listed value will do. Empty conditions match everything."""

    channels: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()  # "es" matches "es" and "es-MX" (case-insensitive)
    keywords: tuple[str, ...] = ()  # lowercase; any of them in the subject or text
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ivr: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutingRule:
    """First matching rule wins: it picks the queue, adds skills, sets the priority."""

    name: str
    match: RuleMatch
    queue: str | None = None  # None: the channel's default queue
    skills: dict[str, int] = field(default_factory=dict)
    priority: int | None = None


@dataclass(frozen=True)
class TwilioConfig:
    auth_token_env: str  # the environment variable holding the account's auth token
    public_base_url: str | None = None  # the URL Twilio calls; None: the request's own URL
    wait_url: str | None = None  # TwiML <Enqueue waitUrl>: what callers hear while waiting
    hold_message: str | None = None  # said once before the caller is enqueued
    # said before hanging up when the call's queue is closed (when_closed = "refuse")
    closed_message: str = (
        "Sorry, we are closed right now. Please call again during our opening hours."
    )


@dataclass(frozen=True)
class MetaConfig:
    app_secret_env: str  # signs every webhook (X-Hub-Signature-256)
    verify_token_env: str  # the subscription handshake's hub.verify_token


@dataclass(frozen=True)
class ConversationConfig:
    # a message this long after its contact was completed reopens it; 0: never
    reopen_s: float = 3600.0


@dataclass(frozen=True)
class MetricsConfig:
    """Live metrics and their history (router/metrics). Filled by `config/metrics.py`."""

    history_days: int = 35  # 15-minute intervals are kept this long (engine clock)
    abandon_grace_s: float = 0.0  # abandons this quick leave the service level's denominator


@dataclass(frozen=True)
class WebhookSubscription:
    """An outbound webhook: events of `events` types are POSTed to `url`, signed."""

    id: str
    url: str
    events: tuple[str, ...]  # event types; "*" is every type, "sla.*" a family
    secret_env: str  # environment variable holding the HMAC secret


@dataclass(frozen=True)
class WebhooksConfig:
    subscriptions: tuple[WebhookSubscription, ...] = ()
    max_attempts: int = 8  # then the delivery goes to the dead-letter list
    timeout_s: float = 5.0
    dead_letter_days: float = 7.0
    # deliveries waiting per subscription at most; past it new ones are dropped and
    # counted, so a dead receiver cannot fill Redis (docs/webhooks.md)
    max_pending: int = 100_000


class Visibility(StrEnum):
    """How a vendor's agents see a customer's email or phone."""

    SHOW = "show"
    MASK = "mask"  # j***@example.com, +34 *** *** 123
    TOKENIZE = "tokenize"  # a stable pseudonym per customer


@dataclass(frozen=True)
class VisibilityPolicy:
    """A vendor's data-visibility clause: what its agents may see of a customer."""

    email: Visibility = Visibility.MASK
    phone: Visibility = Visibility.MASK
    hide: tuple[str, ...] = ()  # contact attribute names that are sensitive: never shown


@dataclass(frozen=True)
class VendorCaps:
    """Capacity caps of a contract, shared by all the vendor's pools; None: no cap."""

    max_concurrent: int | None = None  # contacts reserved or assigned at once
    max_per_hour: int | None = None  # contacts answered per clock hour (vendor's zone)
    max_per_day: int | None = None  # contacts answered per day (vendor's zone)


class PriceUnit(StrEnum):
    CONTACT = "contact"  # price_per_contact: each answered contact
    MINUTE = "minute"  # price_per_minute: each handled minute (talk + wrap-up)


@dataclass(frozen=True)
class VendorPrice:
    amount: float
    unit: PriceUnit
    currency: str = "EUR"  # ISO 4217


@dataclass(frozen=True)
class VendorConfig:
    """An outsourced vendor and its contract (`[vendors.<id>]`, docs/vendors.md).

    It runs one or more outsourced pools (a pool's `vendor` names its id)."""

    id: str
    location: Location
    name: str = ""
    timezone: str = "UTC"  # IANA; "this hour" and "today" of its caps, and its hours
    hours: str | None = None  # a calendar id; None: always open
    # the calendar as the vendor keeps it: in the vendor's time zone unless the
    # calendar sets its own (then the two agree; the loader checks it)
    calendar: CalendarConfig | None = None
    channels: tuple[str, ...] | None = None  # channels it may serve; None: all
    queues: tuple[str, ...] | None = None  # queues it may serve; None: all
    caps: VendorCaps = field(default_factory=VendorCaps)
    min_per_day: int | None = None  # committed volume (answered contacts), one of the two
    min_per_month: int | None = None
    price: VendorPrice | None = None
    sla_target: float | None = None  # share in (0, 1] of answers within its threshold
    sla_threshold_s: float | None = None  # None: each queue's own threshold
    region: str | None = None  # data residency, e.g. "eu"
    visibility: VisibilityPolicy = field(default_factory=VisibilityPolicy)
    # A vendor whose offers time out this many times in a row (an answer resets
    # the run) is closed as failing for fail_pause_s; 0: never
    fail_after_timeouts: int = 3
    fail_pause_s: float = 300.0


@dataclass(frozen=True)
class TenantConfig:
    id: str
    name: str = ""
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    pools: dict[str, PoolConfig] = field(default_factory=dict)
    queues: dict[str, QueueConfig] = field(default_factory=dict)
    tokens: tuple[TokenConfig, ...] = ()
    default_queues: dict[str, str] = field(default_factory=dict)  # channel -> queue
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    rules: tuple[RoutingRule, ...] = ()
    conversations: ConversationConfig = field(default_factory=ConversationConfig)
    twilio: TwilioConfig | None = None
    meta: MetaConfig | None = None
    timezone: str = "UTC"  # IANA name: "today" in metrics, and calendars without their own
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    calendars: dict[str, CalendarConfig] = field(default_factory=dict)
    vendors: dict[str, VendorConfig] = field(default_factory=dict)  # [vendors.<id>]

    def fallback_for(self, channel: str) -> str | None:
        """Where a contact on `channel` goes when its queue is removed by a reload."""
        fb = self.routing.fallback_queue
        if fb is not None and fb in self.queues and channel in self.queues[fb].channels:
            return fb
        return self.default_queues.get(channel)

    def wrap_up_ms(self, queue: QueueConfig, channel: str) -> int:
        seconds = queue.wrap_up_s
        if seconds is None:
            seconds = self.routing.wrap_up_s.get(channel, 0.0)
        return round(seconds * 1000)


@dataclass(frozen=True)
class Config:
    tenants: dict[str, TenantConfig]
    source: str = "<memory>"
