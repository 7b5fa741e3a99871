"""What a topology would cost a month to rent, from what its hosts stand for.

In the real world each host is something you pay for: by the hour (a virtual
machine's cores and memory, a managed load balancer, a cache node, a database
instance) or by use (GB an edge of a CDN serves, GB that cross from one region
to another, DNS queries). ``report.cost()`` prices the topology *as run*:

* fixed costs: every host for a whole month (730 hours), up or down, as a
  rented machine is billed whether it serves or not;
* variable costs: what the run used per simulated second (GB served by CDN
  edges, bytes between regions, DNS queries), scaled to a month at that rate.

Each host says what it stands for through ``Node.footprint()`` (a
``Footprint``: kind, cores, memory, use); the engine stores it in the host's
``NodeStats`` when the run ends, so a report saved as JSON and read back is
priced the same way (``CostBreakdown.of(Report.from_json(text))``).

The default prices (``DEFAULT_PRICES``) are **illustrative**: approximately
AWS us-east-1 on-demand list prices, written down in 2026-12 from the
published rates (EC2 c7i/r7i for cores and memory, an Application Load
Balancer's hourly charge, ElastiCache, RDS for MySQL, CloudFront's first
tier, inter-region transfer, Route 53 standard queries). They were not
fetched live and will drift: give your own with a dict or a TOML file.
Left out: reserved and spot discounts, free tiers, tiered price breaks,
balancer capacity units, storage and IOPS, per-request fees, internet
egress from an origin, and the users' own machines.

    breakdown = report.cost()                                  # default prices
    breakdown = report.cost({"core_hour": 0.03})               # one price changed
    breakdown = report.cost("prices.toml")                     # a [prices] table or top-level keys
    print(breakdown.total_per_month)
"""
from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ._errors import ConfigError

__all__ = ["Footprint", "Prices", "DEFAULT_PRICES", "CostLine", "CostBreakdown", "cost_of", "pareto_front",
           "HOURS_PER_MONTH"]

HOURS_PER_MONTH = 730.0  # 365 days x 24 h / 12, as cloud price pages count a month
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
GB = 1e9  # decimal gigabytes

KINDS = ("app", "balancer", "cache", "database", "cdn", "dns", "none")


def _check_amount(name: str, value) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if not ok or value < 0:
        raise ConfigError(f"{name} must be >= 0, got {value!r}")
    if math.isinf(value):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Footprint:
    """What one host stands for when it is rented.

    ``kind`` picks the prices that apply: ``"app"`` (a machine: ``cores`` and
    ``memory_gb``), ``"balancer"``, ``"cache"`` (a node holding ``memory_gb``),
    ``"database"`` (an instance; a replica is a host of its own), ``"cdn"``
    (``gb_served`` in the run), ``"dns"`` (``queries`` in the run) or
    ``"none"`` (not priced).

        >>> Footprint("app", cores=4, memory_gb=16)
        Footprint(kind='app', cores=4.0, memory_gb=16.0, gb_served=0.0, queries=0)
    """

    kind: str
    cores: float = 0.0
    memory_gb: float = 0.0
    gb_served: float = 0.0
    queries: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("cores", "memory_gb", "gb_served"):
            object.__setattr__(self, name, _check_amount(name, getattr(self, name)))
        if not (isinstance(self.queries, int) and not isinstance(self.queries, bool) and self.queries >= 0):
            raise ConfigError(f"queries must be an integer >= 0, got {self.queries!r}")


@dataclass(frozen=True)
class Prices:
    """Prices in US dollars. Every field is >= 0; see the module docstring for where the defaults come from."""

    core_hour: float = 0.0375             # a vCPU for an hour (c7i/r7i list prices, solved for cores and memory)
    memory_gb_hour: float = 0.0036        # a GB of a machine's memory for an hour
    balancer_hour: float = 0.0225         # a managed load balancer for an hour (capacity units not counted)
    cache_node_hour: float = 0.016        # a cache node for an hour (the smallest node's price) ...
    cache_memory_gb_hour: float = 0.0165  # ... plus each GB of cache memory for an hour (r7g nodes)
    database_instance_hour: float = 0.171  # a database instance (db.m6i.large class) for an hour, each replica too
    cdn_gb: float = 0.085                 # a GB served from a CDN edge (first price tier)
    cross_region_gb: float = 0.02         # a GB sent from one region to another
    dns_million_queries: float = 0.40     # a million DNS queries
    source: str = ("illustrative: approximate AWS us-east-1 on-demand list prices, written down 2026-12, "
                   "not fetched live")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name != "source":
                object.__setattr__(self, f.name, _check_amount(f.name, getattr(self, f.name)))
        if not isinstance(self.source, str):
            raise ConfigError(f"source must be a string, got {self.source!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def of(cls, prices: "Prices | Mapping[str, Any] | str | Path | None" = None) -> "Prices":
        """``None`` (the defaults), a ``Prices``, a dict of the prices to change, or a TOML file's path."""
        if prices is None:
            return DEFAULT_PRICES
        if isinstance(prices, Prices):
            return prices
        if isinstance(prices, (str, Path)):
            return cls.from_toml(prices)
        if isinstance(prices, Mapping):
            unknown = sorted(str(k) for k in prices if k not in cls.names())
            if unknown:
                raise ConfigError(f"unknown price {unknown[0]!r} (prices: {', '.join(cls.names())})")
            if "source" not in prices:  # changed prices are the user's, not the list's
                prices = {**prices, "source": "user prices over " + DEFAULT_PRICES.source}
            return dataclasses.replace(DEFAULT_PRICES, **prices)
        raise ConfigError(f"prices must be a Prices, a dict or a TOML file's path, got {prices!r}")

    @classmethod
    def from_toml(cls, path: "str | Path") -> "Prices":
        """Read prices from a TOML file: top-level keys, or a ``[prices]`` table."""
        import tomllib

        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"prices file must exist, got {str(path)!r}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"prices file {str(path)!r} is not valid TOML: {exc}") from None
        if isinstance(data.get("prices"), dict):
            data = data["prices"]
        data.setdefault("source", f"{p.name} over " + DEFAULT_PRICES.source)
        return cls.of(data)


DEFAULT_PRICES = Prices()


@dataclass(frozen=True)
class CostLine:
    """One host (or the network) and what it costs a month."""

    name: str
    kind: str
    what: str
    per_month: float


@dataclass(frozen=True)
class CostBreakdown:
    """Dollars a month per host and in total, for the topology as run."""

    lines: tuple[CostLine, ...]
    prices: Prices = field(default=DEFAULT_PRICES)

    @classmethod
    def of(cls, report, prices=None) -> "CostBreakdown":
        """Price a ``Report``, or the dict ``Report.from_json`` reads back from a saved one."""
        return cost_of(report, prices)

    @property
    def total_per_month(self) -> float:
        return sum(line.per_month for line in self.lines)

    def per_1k_users(self, users: int) -> float:
        """The total spread over ``users`` (per thousand of them)."""
        if not (isinstance(users, int) and users >= 1):
            raise ConfigError(f"users must be an integer >= 1, got {users!r}")
        return self.total_per_month / users * 1000

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in self.lines:
            out[line.kind] = out.get(line.kind, 0.0) + line.per_month
        return out

    def __getitem__(self, name: str) -> float:
        for line in self.lines:
            if line.name == name:
                return line.per_month
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"lines": [dataclasses.asdict(line) for line in self.lines],
                "total_per_month": round(self.total_per_month, 6), "prices": dataclasses.asdict(self.prices)}

    def __rich__(self):
        from rich.console import Group
        from rich.table import Table

        t = Table(title="Cost a month", title_justify="left")
        t.add_column("host")
        t.add_column("kind")
        t.add_column("what")
        t.add_column("$/month", justify="right")
        for line in self.lines:
            t.add_row(line.name, line.kind, line.what, f"{line.per_month:,.2f}")
        t.add_section()
        t.add_row("total", "", "", f"{self.total_per_month:,.2f}")
        return Group(t, f"Prices: {self.prices.source}.")

    def __str__(self) -> str:
        from rich.console import Console

        buf = io.StringIO()
        Console(file=buf, width=100, force_terminal=False, color_system=None).print(self)
        return buf.getvalue()


def _get(obj, name: str, default=None):
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _footprint(stats) -> Footprint | None:
    fp = _get(stats, "footprint")
    if fp is None or isinstance(fp, Footprint):
        return fp
    return Footprint(**fp)  # read back from a saved report


def _size(gb: float) -> str:
    return f"{gb:.3g} GB" if gb >= 1 else f"{gb * 1024:.3g} MB"


def _host_line(name: str, fp: Footprint, run_s: float, p: Prices) -> CostLine | None:
    per_use = SECONDS_PER_MONTH / run_s if run_s > 0 else 0.0
    if fp.kind == "app":
        hourly = fp.cores * p.core_hour + fp.memory_gb * p.memory_gb_hour
        return CostLine(name, fp.kind, f"{fp.cores:g} cores, {_size(fp.memory_gb)}", hourly * HOURS_PER_MONTH)
    if fp.kind == "balancer":
        return CostLine(name, fp.kind, "1 balancer", p.balancer_hour * HOURS_PER_MONTH)
    if fp.kind == "cache":
        hourly = p.cache_node_hour + fp.memory_gb * p.cache_memory_gb_hour
        return CostLine(name, fp.kind, f"1 node, {_size(fp.memory_gb)}", hourly * HOURS_PER_MONTH)
    if fp.kind == "database":
        return CostLine(name, fp.kind, "1 instance", p.database_instance_hour * HOURS_PER_MONTH)
    if fp.kind == "cdn":
        gb_month = fp.gb_served * per_use
        return CostLine(name, fp.kind, f"{gb_month:,.0f} GB served", gb_month * p.cdn_gb)
    if fp.kind == "dns":
        millions = fp.queries * per_use / 1e6
        return CostLine(name, fp.kind, f"{millions:,.1f}M queries", millions * p.dns_million_queries)
    return None


def cost_of(report, prices: "Prices | Mapping[str, Any] | str | Path | None" = None) -> CostBreakdown:
    """Price a ``Report`` (or the dict ``Report.from_json`` gives) as run; see the module docstring."""
    p = Prices.of(prices)
    run_s = float(_get(report, "duration_s", 0.0) or 0.0)
    lines: list[CostLine] = []
    components = _get(report, "components", {}) or {}
    for name, stats in components.items():
        fp = _footprint(stats)
        if fp is None:
            continue
        line = _host_line(str(name), fp, run_s, p)
        if line is not None:
            lines.append(line)
    crossed = (_get(report, "network", {}) or {}).get("bytes_cross_region", 0)
    if crossed and run_s > 0:
        gb_month = crossed / GB * SECONDS_PER_MONTH / run_s
        lines.append(CostLine("network", "network", f"{gb_month:,.0f} GB across regions", gb_month * p.cross_region_gb))
    return CostBreakdown(tuple(lines), p)


def _value(item, metric: str) -> float | None:
    try:
        v = item[metric]
    except (KeyError, TypeError, IndexError):
        v = getattr(item, metric, None)
    v = getattr(v, "mean", v)  # a sweep's Estimate: its mean
    if isinstance(v, Mapping):
        v = v.get("mean")
    if v is None or not isinstance(v, (int, float)) or v != v:
        return None
    return float(v)


def pareto_front(items, x: str = "cost_per_month", y: str = "p99_ms") -> list:
    """The items not beaten on both ``x`` and ``y`` (lower is better on both), by ascending ``x``.

    An item is beaten when another is no worse on both figures and better on
    at least one. Items are a sweep's points (figures are their means), rows,
    or any mapping of figures; those missing a figure are left out.

        >>> pareto_front([{"c": 1, "p": 9}, {"c": 2, "p": 5}, {"c": 3, "p": 6}], x="c", y="p")
        [{'c': 1, 'p': 9}, {'c': 2, 'p': 5}]
    """
    scored = [(vx, vy, i, item) for i, item in enumerate(items)
              if (vx := _value(item, x)) is not None and (vy := _value(item, y)) is not None]
    scored.sort(key=lambda s: (s[0], s[1], s[2]))
    front, best, last = [], float("inf"), None
    for vx, vy, _, item in scored:
        if vy < best or (vx, vy) == last:  # every cheaper one is worse on y; an equal twin is not better
            front.append(item)
            best, last = vy, (vx, vy)
    return front
