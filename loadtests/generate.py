"""Synthetic traces (and rosters): Poisson arrivals with a daily profile and bursts.

    python -m loadtests.generate --out T.jsonl --hours 24 --rate 120 --seed 1 \
        --profile daily --burst 36000:1800:3 --handle lognormal:240:120 \
        --patience exp:90 --mix voice=0.6,chat=0.3,email=0.1 --roster R.json --agents 12

Arrivals are a non-homogeneous Poisson process drawn by thinning (Lewis & Shedler):
candidates at the peak rate, each kept with probability rate(t) / peak. The same
seed gives the same file. See docs/traces.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests.trace import Roster, RosterAgent, TraceContact, write_roster, write_trace

HOUR_S = 3600.0

# Relative arrival rate per hour of the day (00:00 .. 23:00) of a typical inbound
# call center: quiet at night, a morning peak near 10:00, a smaller one after lunch.
DAILY_PROFILE: tuple[float, ...] = (
    0.10, 0.06, 0.04, 0.04, 0.05, 0.10,
    0.30, 0.80, 1.50, 2.00, 2.20, 2.10,
    1.80, 1.70, 1.90, 1.90, 1.70, 1.40,
    1.10, 0.90, 0.70, 0.50, 0.30, 0.16,
)  # fmt: skip


class UsageError(Exception):
    """Bad options: printed as one line, exit status 2."""


@dataclass(frozen=True)
class Burst:
    at_s: float
    duration_s: float
    factor: float


@dataclass(frozen=True)
class Dist:
    """A positive random duration: exponential or lognormal, given by mean (and sd)."""

    kind: str  # "exp" | "lognormal" | "none"
    mean: float = 0.0
    sd: float = 0.0

    def draw(self, rng: random.Random) -> float | None:
        if self.kind == "none":
            return None
        if self.kind == "exp":
            return rng.expovariate(1.0 / self.mean)
        # lognormal with the requested mean and sd: sigma^2 = ln(1 + sd^2/mean^2)
        s2 = math.log1p((self.sd / self.mean) ** 2)
        return rng.lognormvariate(math.log(self.mean) - s2 / 2, math.sqrt(s2))


def parse_dist(text: str, opt: str, *, allow_none: bool) -> Dist:
    parts = text.split(":")
    kind = parts[0]
    try:
        nums = [float(x) for x in parts[1:]]
    except ValueError:
        raise UsageError(f"{opt}: numbers expected in {text!r}") from None
    if kind == "none" and allow_none and not nums:
        return Dist("none")
    if kind == "exp" and len(nums) == 1 and nums[0] > 0 and math.isfinite(nums[0]):
        return Dist("exp", nums[0])
    if kind == "lognormal" and len(nums) == 2 and all(math.isfinite(x) and x > 0 for x in nums):
        return Dist("lognormal", nums[0], nums[1])
    forms = "exp:MEAN" + (", none" if allow_none else ", lognormal:MEAN:SD")
    raise UsageError(f"{opt}: expected {forms} with positive numbers, got {text!r}")


def parse_weights(text: str, opt: str) -> dict[str, float]:
    """`voice=0.6,chat=0.3` (or `a,b` for equal weights), normalised to sum 1."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, w = part.partition("=")
        name = name.strip()
        if not name:
            raise UsageError(f"{opt}: empty name in {text!r}")
        try:
            weight = float(w) if sep else 1.0
        except ValueError:
            raise UsageError(f"{opt}: {name}: weight must be a number, got {w!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise UsageError(f"{opt}: {name}: weight must be >= 0, got {w!r}")
        if name in out:
            raise UsageError(f"{opt}: {name} given twice")
        out[name] = weight
    total = sum(out.values())
    if total <= 0:
        raise UsageError(f"{opt}: weights must not all be 0")
    return {k: v / total for k, v in out.items()}


def parse_burst(text: str) -> Burst:
    parts = text.split(":")
    try:
        at, dur, factor = (float(x) for x in parts)
    except ValueError:
        raise UsageError(f"--burst: expected AT_S:DURATION_S:FACTOR, got {text!r}") from None
    if not (at >= 0 and dur > 0 and factor >= 0) or not all(map(math.isfinite, (at, dur, factor))):
        raise UsageError(f"--burst: need AT_S >= 0, DURATION_S > 0, FACTOR >= 0, got {text!r}")
    return Burst(at, dur, factor)


def load_profile(spec: str) -> tuple[float, ...]:
    """flat, daily, or a file of relative rates (JSON list or numbers) spread over 24 h."""
    if spec == "flat":
        return (1.0,)
    if spec == "daily":
        return DAILY_PROFILE
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"--profile: expected flat, daily or a file, got {spec!r}")
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if text.lstrip().startswith("[") else text.replace(",", " ").split()
        values = tuple(float(x) for x in raw)
    except (ValueError, TypeError):
        raise UsageError(f"--profile: {spec}: expected a list of numbers") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values) or sum(values) == 0:
        raise UsageError(f"--profile: {spec}: need non-negative numbers, not all 0")
    return values


@dataclass(frozen=True)
class Rate:
    """Arrivals per second at time t; the profile is scaled to average 1 over a day."""

    per_hour: float
    profile: tuple[float, ...]
    bursts: tuple[Burst, ...]

    def at(self, t: float) -> float:
        k = len(self.profile)
        mean = sum(self.profile) / k
        slot = int((t % 86400.0) / (86400.0 / k))
        r = self.per_hour / HOUR_S * self.profile[slot] / mean
        for b in self.bursts:
            if b.at_s <= t < b.at_s + b.duration_s:
                r *= b.factor
        return r

    def peak(self) -> float:
        mean = sum(self.profile) / len(self.profile)
        boost = math.prod(max(b.factor, 1.0) for b in self.bursts)
        return self.per_hour / HOUR_S * max(self.profile) / mean * boost


def arrivals(rate: Rate, horizon_s: float, rng: random.Random) -> Iterator[float]:
    """Arrival times of the non-homogeneous Poisson process, by thinning."""
    peak = rate.peak()
    if peak <= 0:
        return
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= horizon_s:
            return
        if rng.random() * peak < rate.at(t):
            yield t


def _pick(weights: dict[str, float], rng: random.Random) -> str:
    u = rng.random()
    acc = 0.0
    for name, w in weights.items():
        acc += w
        if u < acc:
            return name
    return next(reversed(weights))


@dataclass(frozen=True)
class Plan:
    """Everything a generation needs, validated before any file is written."""

    rate: Rate
    horizon_s: float
    handle: Dist
    patience: Dist
    mix: dict[str, float]
    queues: dict[str, float]
    seed: int


def plan(args: argparse.Namespace) -> Plan:
    if not (math.isfinite(args.hours) and args.hours > 0):
        raise UsageError("--hours: must be > 0")
    if not (math.isfinite(args.rate) and args.rate >= 0):
        raise UsageError("--rate: must be >= 0")
    patience = parse_dist(args.patience, "--patience", allow_none=True)
    if patience.kind == "lognormal":
        raise UsageError("--patience: expected exp:MEAN or none")
    return Plan(
        rate=Rate(args.rate, load_profile(args.profile), tuple(parse_burst(b) for b in args.burst)),
        horizon_s=args.hours * HOUR_S,
        handle=parse_dist(args.handle, "--handle", allow_none=False),
        patience=patience,
        mix=parse_weights(args.mix, "--mix"),
        queues=parse_weights(args.queues, "--queues"),
        seed=args.seed,
    )


def contacts(p: Plan) -> Iterator[TraceContact]:
    """The trace, in arrival order; one random stream, so a seed fixes every field."""
    rng = random.Random(p.seed)
    for n, t in enumerate(arrivals(p.rate, p.horizon_s, rng), 1):
        handle = p.handle.draw(rng)
        patience = p.patience.draw(rng)
        yield TraceContact(
            at=round(t, 3),
            id=f"c{n}",
            channel=_pick(p.mix, rng),
            queue=_pick(p.queues, rng),
            handle_s=round(handle or 0.0, 3),
            patience_s=None if patience is None else round(patience, 3),
        )


def roster(args: argparse.Namespace) -> Roster:
    """Agents always available, capacity 1 on every channel of the mix."""
    if args.pools:
        pools = {}
        for part in args.pools.split(","):
            name, _, n = part.partition(":")
            if not name.strip() or not n.strip().isdigit():
                raise UsageError(f"--pools: expected POOL:N,..., got {part!r}")
            pools[name.strip()] = int(n)
    elif args.agents is not None:
        if args.agents < 0:
            raise UsageError("--agents: must be >= 0")
        pools = {"inhouse": args.agents}
    else:
        raise UsageError("--roster: give --agents N or --pools POOL:N,...")
    channels = sorted(parse_weights(args.mix, "--mix"))
    agents = [
        RosterAgent(id=f"{pool}-{i}", pool=pool, capacity={c: 1 for c in channels})
        for pool, n in pools.items()
        for i in range(1, n + 1)
    ]
    return Roster(tuple(agents))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadtests.generate",
        description="Generate a synthetic trace (and roster). See docs/traces.md.",
    )
    p.add_argument("--out", required=True, help="output trace (JSONL)")
    p.add_argument("--roster", help="also write a roster (JSON) with --agents or --pools")
    p.add_argument("--agents", type=int, help="agents in pool inhouse")
    p.add_argument("--pools", help="agents per pool, e.g. inhouse:10,vendor:5")
    p.add_argument("--hours", type=float, required=True, help="length of the trace in hours")
    p.add_argument(
        "--rate", type=float, required=True, help="mean arrivals per hour (averaged over a day)"
    )
    p.add_argument("--profile", default="flat", help="flat (default), daily, or a file")
    p.add_argument(
        "--burst",
        action="append",
        default=[],
        metavar="AT_S:DURATION_S:FACTOR",
        help="multiply the rate by FACTOR from AT_S for DURATION_S (repeatable)",
    )
    p.add_argument("--handle", default="exp:180", help="exp:MEAN or lognormal:MEAN:SD (s)")
    p.add_argument("--patience", default="none", help="exp:MEAN or none (default: never abandon)")
    p.add_argument("--mix", default="voice=1", help="channel shares, e.g. voice=0.6,chat=0.4")
    p.add_argument("--queues", default="support", help="queue shares, e.g. sales=0.3,support=0.7")
    p.add_argument("--seed", type=int, required=True, help="random seed")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        spec = plan(args)
        team = roster(args) if args.roster else None
        n = write_trace(args.out, contacts(spec))
        if team is not None:
            write_roster(args.roster, team)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"contacts written: {n} over {args.hours:g} h (mean {n / args.hours:.1f}/h)")
    if team is not None:
        print(f"roster: {len(team.agents)} agents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
