"""What a batch costs: instance-hours by market and type, prices, and attribution to tenants.

Pure code (no AWS calls). Prices come from a price table file
(``warpspeed/prices/aws-us-east-1.yaml`` by default). Instance-hours come from EMR fleet data in
production (:func:`usage_from_emr_instances`, fed with ``ListInstances`` items) and from the
measured run time on the embedded stack (:func:`usage_from_runtime`: the batch is assumed to
hold the price table's reference cluster for as long as it ran).

Money is computed in float dollars and attributed to tenants in integer micro-dollars, so the
tenants' shares of a batch always add up to the batch's cost exactly.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from warpspeed.exceptions import WarpSpeedConfigError

PRICES_DIR = Path(__file__).resolve().parent / "prices"
DEFAULT_PRICE_TABLE = PRICES_DIR / "aws-us-east-1.yaml"
MARKETS = ("ON_DEMAND", "SPOT", "RESERVED")
"""EC2 markets: EMR reports ON_DEMAND or SPOT; RESERVED is on-demand capacity covered by RIs."""
ROLES = ("master", "core", "task")

BASIS_RUNTIME = "measured-runtime x reference cluster"
BASIS_EMR = "emr-list-instances"


def _positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise WarpSpeedConfigError(f"{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise WarpSpeedConfigError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def _fraction(value: Any, name: str) -> float:
    number = _positive(value, name, allow_zero=True)
    if number >= 1:
        raise WarpSpeedConfigError(f"{name} must be a fraction in [0, 1), got {value!r}")
    return number


@dataclass(frozen=True)
class InstancePrice:
    """One EC2 instance type: size, on-demand price and EMR fee, in $ per instance-hour."""

    instance_type: str
    vcpu: int
    memory_gib: float
    on_demand: float
    emr_fee: float

    def __post_init__(self) -> None:
        where = f"instances.{self.instance_type}"
        if not isinstance(self.vcpu, int) or self.vcpu < 1:
            raise WarpSpeedConfigError(f"{where}.vcpu must be a positive integer, got {self.vcpu!r}")
        _positive(self.memory_gib, f"{where}.memory_gib")
        _positive(self.on_demand, f"{where}.on_demand")
        _positive(self.emr_fee, f"{where}.emr_fee", allow_zero=True)


@dataclass(frozen=True)
class ServerlessPrices:
    """EMR Serverless rates ($ per vCPU-hour, per GB-hour) and its minimum billing per worker."""

    vcpu_hour: float = 0.052624
    gb_hour: float = 0.0057785
    storage_gb_hour: float = 0.000111
    minimum_billed_seconds: float = 60.0

    def __post_init__(self) -> None:
        for name in ("vcpu_hour", "gb_hour", "storage_gb_hour", "minimum_billed_seconds"):
            _positive(getattr(self, name), f"emr_serverless.{name}", allow_zero=True)


@dataclass(frozen=True)
class S3Prices:
    """S3 request and storage prices."""

    put_per_1000: float = 0.005
    get_per_1000: float = 0.0004
    storage_gb_month: float = 0.023

    def __post_init__(self) -> None:
        for name in ("put_per_1000", "get_per_1000", "storage_gb_month"):
            _positive(getattr(self, name), f"s3.{name}", allow_zero=True)

    def requests_cost(self, gets: float, puts: float) -> float:
        """Return the cost of ``gets`` GET-class and ``puts`` PUT-class requests."""
        return gets / 1000 * self.get_per_1000 + puts / 1000 * self.put_per_1000


@dataclass(frozen=True)
class FleetShape:
    """Part of a cluster: ``count`` instances of one type, in one role and market."""

    role: str
    instance_type: str
    count: int
    market: str = "ON_DEMAND"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise WarpSpeedConfigError(f"fleet role {self.role!r} must be one of {', '.join(ROLES)}")
        if self.market not in MARKETS:
            raise WarpSpeedConfigError(f"fleet market {self.market!r} must be one of {', '.join(MARKETS)}")
        if not isinstance(self.count, int) or self.count < 0:
            raise WarpSpeedConfigError(f"fleet count must be a non-negative integer, got {self.count!r}")


@dataclass(frozen=True)
class PriceTable:
    """Every price the cost model uses; load with :meth:`load`.

    :param spot_discount: Spot price = on-demand x (1 - discount), unless
        ``spot_discount_by_type`` names the type.
    :param reserved_discount: discount of RESERVED (RI-covered on-demand) capacity.
    :param reference_cluster: the cluster a batch is assumed to hold when only its run time is known.
    """

    id: str
    instances: Mapping[str, InstancePrice]
    spot_discount: float = 0.65
    spot_discount_by_type: Mapping[str, float] = field(default_factory=dict)
    reserved_discount: float = 0.0
    serverless: ServerlessPrices = field(default_factory=ServerlessPrices)
    s3: S3Prices = field(default_factory=S3Prices)
    sqs_per_million_requests: float = 0.40
    reference_cluster: tuple[FleetShape, ...] = ()
    region: str = ""
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not self.instances:
            raise WarpSpeedConfigError(f"price table {self.id!r}: 'instances' is empty")
        _fraction(self.spot_discount, "spot_discount")
        _fraction(self.reserved_discount, "reserved_discount")
        for itype, discount in self.spot_discount_by_type.items():
            self.instance(itype)
            _fraction(discount, f"spot_discount_by_type.{itype}")
        for fleet in self.reference_cluster:
            self.instance(fleet.instance_type)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], source: str = "price table") -> PriceTable:
        """Build a price table from its parsed YAML/JSON document."""
        if not isinstance(doc, Mapping):
            raise WarpSpeedConfigError(f"{source}: expected a mapping at the top level")
        raw_instances = doc.get("instances")
        if not isinstance(raw_instances, Mapping) or not raw_instances:
            raise WarpSpeedConfigError(f"{source}: 'instances' must be a non-empty mapping")
        try:
            instances = {
                str(name): InstancePrice(instance_type=str(name), **spec)
                for name, spec in raw_instances.items()
            }
            return cls(
                id=str(doc.get("id") or Path(source).stem),
                region=str(doc.get("region") or ""),
                currency=str(doc.get("currency") or "USD"),
                instances=instances,
                spot_discount=doc.get("spot_discount", 0.65),
                spot_discount_by_type=dict(doc.get("spot_discount_by_type") or {}),
                reserved_discount=doc.get("reserved_discount", 0.0),
                serverless=ServerlessPrices(**(doc.get("emr_serverless") or {})),
                s3=S3Prices(**(doc.get("s3") or {})),
                sqs_per_million_requests=_positive(
                    (doc.get("sqs") or {}).get("per_million_requests", 0.40), "sqs.per_million_requests",
                    allow_zero=True),
                reference_cluster=tuple(FleetShape(**f) for f in doc.get("reference_cluster") or ()),
            )
        except TypeError as err:
            raise WarpSpeedConfigError(f"{source}: {err}") from err

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        """Read a price table file (YAML or JSON); the default is the bundled us-east-1 table."""
        path = Path(path) if path else DEFAULT_PRICE_TABLE
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WarpSpeedConfigError(f"price table {path} does not exist") from None
        except yaml.YAMLError as err:
            raise WarpSpeedConfigError(f"price table {path} is not valid YAML/JSON: {err}") from err
        return cls.from_dict(doc, source=str(path))

    def instance(self, instance_type: str) -> InstancePrice:
        """Return one instance type's prices, or say which types the table knows."""
        try:
            return self.instances[instance_type]
        except KeyError:
            raise WarpSpeedConfigError(
                f"price table {self.id!r} has no instance type {instance_type!r}; "
                f"known: {', '.join(sorted(self.instances))}"
            ) from None

    def ec2_hourly(self, instance_type: str, market: str) -> float:
        """Return the EC2 price of one instance-hour in ``market``."""
        base = self.instance(instance_type).on_demand
        if market == "SPOT":
            return base * (1 - self.spot_discount_by_type.get(instance_type, self.spot_discount))
        if market == "RESERVED":
            return base * (1 - self.reserved_discount)
        if market == "ON_DEMAND":
            return base
        raise WarpSpeedConfigError(f"unknown market {market!r}; use one of {', '.join(MARKETS)}")

    def emr_fee_hourly(self, instance_type: str) -> float:
        """Return the EMR fee of one instance-hour (the same in every market)."""
        return self.instance(instance_type).emr_fee

    def serverless_cost(self, vcpu_hours: float, gb_hours: float) -> float:
        """Return the EMR Serverless cost of some vCPU-hours and GB-hours."""
        return vcpu_hours * self.serverless.vcpu_hour + gb_hours * self.serverless.gb_hour


@dataclass(frozen=True)
class InstanceUsage:
    """Instance-hours of one instance type in one market."""

    instance_type: str
    market: str
    instance_hours: float


def merge_usage(usages: Iterable[InstanceUsage]) -> tuple[InstanceUsage, ...]:
    """Sum usage by (instance type, market); return it sorted, zero entries dropped."""
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for u in usages:
        totals[(u.instance_type, u.market)] += u.instance_hours
    return tuple(
        InstanceUsage(itype, market, hours) for (itype, market), hours in sorted(totals.items()) if hours > 0
    )


def usage_from_runtime(seconds: float, shape: Sequence[FleetShape]) -> tuple[InstanceUsage, ...]:
    """Return the instance-hours of holding the cluster ``shape`` for ``seconds``."""
    hours = max(0.0, float(seconds)) / 3600
    return merge_usage(InstanceUsage(f.instance_type, f.market, f.count * hours) for f in shape)


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def usage_from_emr_instances(
    instances: Iterable[Mapping[str, Any]], started: datetime, finished: datetime
) -> tuple[InstanceUsage, ...]:
    """Return the instance-hours that EMR instances spent inside ``[started, finished]``.

    :param instances: ``ListInstances`` items (``InstanceType``, ``Market`` and
        ``Status.Timeline.CreationDateTime``/``EndDateTime``); an instance still running counts
        until ``finished``.
    """
    usages = []
    for inst in instances:
        timeline = (inst.get("Status") or {}).get("Timeline") or {}
        created = _as_datetime(timeline.get("CreationDateTime")) or started
        ended = _as_datetime(timeline.get("EndDateTime")) or finished
        overlap = (min(ended, finished) - max(created, started)).total_seconds()
        if overlap > 0:
            usages.append(InstanceUsage(str(inst["InstanceType"]), str(inst.get("Market") or "ON_DEMAND"),
                                        overlap / 3600))
    return merge_usage(usages)


@dataclass(frozen=True)
class S3RequestModel:
    """S3 requests one Spark scoring application makes (an estimate; S3 bills are not per job).

    Defaults fit maintained Iceberg tables (compacted files, expired snapshots): loading table
    metadata and manifests, reading the feature files of each (tenant, model) slice and the
    model, writing data files and the commit.
    """

    gets_per_app: float = 150
    puts_per_app: float = 6
    gets_per_slice: float = 12
    puts_per_slice: float = 2

    def requests(self, apps: float, slices: float) -> tuple[float, float]:
        """Return (GET-class, PUT-class) requests of ``apps`` applications over ``slices`` slices."""
        return (apps * self.gets_per_app + slices * self.gets_per_slice,
                apps * self.puts_per_app + slices * self.puts_per_slice)


@dataclass(frozen=True)
class CostBreakdown:
    """Dollars by line item."""

    ec2_usd: float = 0.0
    emr_fee_usd: float = 0.0
    serverless_usd: float = 0.0
    s3_usd: float = 0.0
    other_usd: float = 0.0

    @property
    def total_usd(self) -> float:
        """Return the sum of every line."""
        return self.ec2_usd + self.emr_fee_usd + self.serverless_usd + self.s3_usd + self.other_usd

    def __add__(self, other: CostBreakdown) -> CostBreakdown:
        return CostBreakdown(
            self.ec2_usd + other.ec2_usd, self.emr_fee_usd + other.emr_fee_usd,
            self.serverless_usd + other.serverless_usd, self.s3_usd + other.s3_usd,
            self.other_usd + other.other_usd,
        )


def instance_cost(usage: Iterable[InstanceUsage], prices: PriceTable) -> CostBreakdown:
    """Return EC2 and EMR fee dollars of some instance-hours."""
    ec2 = fee = 0.0
    for u in usage:
        ec2 += u.instance_hours * prices.ec2_hourly(u.instance_type, u.market)
        fee += u.instance_hours * prices.emr_fee_hourly(u.instance_type)
    return CostBreakdown(ec2_usd=ec2, emr_fee_usd=fee)


@dataclass(frozen=True)
class TenantCost:
    """A tenant's share of one batch."""

    tenant_id: str
    rows: int
    requests: int
    cost_usd: float


def split_micros(total_usd: float, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total_usd`` in integer micro-dollars by weight (largest remainder; sums exactly)."""
    total = round(total_usd * 1_000_000)
    keys = sorted(weights)
    if not keys:
        return {}
    weight_sum = sum(max(0.0, weights[k]) for k in keys)
    if weight_sum <= 0:
        weight_sum, clean = float(len(keys)), dict.fromkeys(keys, 1.0)
    else:
        clean = {k: max(0.0, weights[k]) for k in keys}
    exact = {k: total * clean[k] / weight_sum for k in keys}
    shares = {k: math.floor(v) for k, v in exact.items()}
    left = total - sum(shares.values())
    for k in sorted(keys, key=lambda k: (-(exact[k] - shares[k]), k))[:left]:
        shares[k] += 1
    return shares


def attribute_to_tenants(
    total_usd: float, rows_by_tenant: Mapping[str, int], requests_by_tenant: Mapping[str, int]
) -> tuple[TenantCost, ...]:
    """Share a batch's cost among its tenants by rows scored (by requests if no row was scored)."""
    tenants = sorted(set(rows_by_tenant) | set(requests_by_tenant))
    rows = {t: int(rows_by_tenant.get(t, 0)) for t in tenants}
    requests = {t: int(requests_by_tenant.get(t, 0)) for t in tenants}
    weights = rows if sum(rows.values()) > 0 else requests
    micros = split_micros(total_usd, {t: float(weights[t]) for t in tenants})
    return tuple(TenantCost(t, rows[t], requests[t], micros[t] / 1_000_000) for t in tenants)


@dataclass(frozen=True)
class BatchCost:
    """What one batch used and cost, and who pays for it."""

    usage: tuple[InstanceUsage, ...]
    breakdown: CostBreakdown
    tenants: tuple[TenantCost, ...]
    basis: str
    price_table: str

    @property
    def on_demand_hours(self) -> float:
        """Return on-demand (incl. reserved) instance-hours."""
        return sum(u.instance_hours for u in self.usage if u.market != "SPOT")

    @property
    def spot_hours(self) -> float:
        """Return Spot instance-hours."""
        return sum(u.instance_hours for u in self.usage if u.market == "SPOT")

    @property
    def spot_share(self) -> float:
        """Return the Spot share of instance-hours (0 when nothing ran)."""
        total = self.on_demand_hours + self.spot_hours
        return self.spot_hours / total if total else 0.0


def batch_cost(
    *,
    run_seconds: float,
    rows_by_tenant: Mapping[str, int],
    requests_by_tenant: Mapping[str, int],
    slices: int,
    prices: PriceTable,
    instances: Iterable[Mapping[str, Any]] | None = None,
    started: datetime | None = None,
    finished: datetime | None = None,
    s3_model: S3RequestModel | None = None,
) -> BatchCost:
    """Cost one batch and attribute it to its tenants.

    :param run_seconds: measured wall time of the batch (used when ``instances`` is None).
    :param slices: (tenant, model) slices the batch scored (drives the S3 request estimate).
    :param instances: EMR ``ListInstances`` items of the batch's cluster; needs ``started``
        and ``finished``.
    """
    if instances is not None:
        if started is None or finished is None:
            raise WarpSpeedConfigError("batch_cost with EMR instances needs started and finished")
        usage, basis = usage_from_emr_instances(instances, started, finished), BASIS_EMR
    else:
        if not prices.reference_cluster:
            raise WarpSpeedConfigError(f"price table {prices.id!r} has no reference_cluster")
        usage, basis = usage_from_runtime(run_seconds, prices.reference_cluster), BASIS_RUNTIME
    gets, puts = (s3_model or S3RequestModel()).requests(1, slices)
    breakdown = instance_cost(usage, prices) + CostBreakdown(s3_usd=prices.s3.requests_cost(gets, puts))
    tenants = attribute_to_tenants(breakdown.total_usd, rows_by_tenant, requests_by_tenant)
    return BatchCost(usage=usage, breakdown=breakdown, tenants=tenants, basis=basis, price_table=prices.id)
