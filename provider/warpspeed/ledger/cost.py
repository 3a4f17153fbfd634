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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.ledger.prices import FleetShape, PriceTable

BASIS_RUNTIME = "measured-runtime x reference cluster"
BASIS_EMR = "emr-list-instances"


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
    """EC2 instance-hours at their market's rate (on-demand, Spot or Reserved)."""
    emr_fee_usd: float = 0.0
    """EMR's own per-instance-hour fee, on top of EC2."""
    serverless_usd: float = 0.0
    """EMR Serverless vCPU-hours and GB-hours (the simulator's serverless strategy)."""
    s3_usd: float = 0.0
    """S3 requests (estimated by :class:`S3RequestModel`); the simulator adds storage of retained files."""
    other_usd: float = 0.0
    """The rest: SQS requests and the orchestration (Airflow) itself, in the simulator."""

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
