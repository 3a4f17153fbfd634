"""The batch ledger's rows: one per scored batch, with its instance-hours, cost and tenant shares.

Pure code: a row is built from the batch's run record, manifest and result summary; the cost
comes from :mod:`warpspeed.ledger.cost` and the prices from :mod:`warpspeed.ledger.prices`.
:class:`~warpspeed.hooks.iceberg.IcebergLedgerHook` writes the rows to ``warpspeed.batch_runs``
(:mod:`warpspeed.ledger.tables`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from warpspeed.ledger.cost import BatchCost, InstanceUsage, TenantCost, batch_cost
from warpspeed.ledger.prices import PriceTable
from warpspeed.window.manifests import BatchManifest, BatchRun


@cache
def default_prices() -> PriceTable:
    """Return the bundled price table (read once per process)."""
    return PriceTable.load()


@dataclass(frozen=True)
class BatchRecord:
    """One ledger row (columns of ``warpspeed.batch_runs``)."""

    window_id: str
    window_start: datetime
    batch_id: str
    workload: str
    status: str
    tenants: list[str]
    requests: int
    failed_requests: int
    rows: int
    backend: str
    cluster_id: str
    started_at: datetime
    finished_at: datetime
    run_seconds: float
    spark_seconds: float | None
    features_snapshot_id: int | None
    scores_snapshot_id: int | None
    recorded_at: datetime
    cluster_created: bool | None = None
    instance_hours_on_demand: float = 0.0
    instance_hours_spot: float = 0.0
    usage: list[InstanceUsage] = field(default_factory=list)
    cost_ec2_usd: float = 0.0
    cost_emr_fee_usd: float = 0.0
    cost_s3_usd: float = 0.0
    cost_total_usd: float = 0.0
    cost_basis: str | None = None
    price_table: str | None = None
    tenant_costs: list[TenantCost] = field(default_factory=list)


def cost_of_batch(
    run: BatchRun,
    manifest: BatchManifest,
    summary: Mapping[str, Any] | None,
    prices: PriceTable,
    instances: Iterable[Mapping[str, Any]] | None = None,
) -> BatchCost:
    """Cost one batch: instance-hours (EMR fleet data if given, else measured run time) and tenant shares."""
    members = summary.get("members", []) if summary else []
    rows_by_tenant: Counter[str] = Counter()
    for m in members:
        rows_by_tenant[str(m["tenant_id"])] += int(m.get("rows") or 0)
    requests_by_tenant = Counter(m.tenant_id for m in manifest.members)
    return batch_cost(
        run_seconds=float(run.run_seconds),
        rows_by_tenant=rows_by_tenant,
        requests_by_tenant=requests_by_tenant,
        slices=len({(m.tenant_id, m.model) for m in manifest.members}),
        prices=prices,
        instances=instances,
        started=datetime.fromisoformat(run.started_at),
        finished=datetime.fromisoformat(run.finished_at),
    )


def batch_record(
    run: BatchRun,
    manifest: BatchManifest,
    summary: Mapping[str, Any] | None,
    window_start: datetime,
    *,
    prices: PriceTable | None = None,
    instances: Iterable[Mapping[str, Any]] | None = None,
) -> BatchRecord:
    """Build the ledger row of one batch from its run record, manifest and result summary.

    :param prices: the price table; the bundled one when None.
    :param instances: EMR ``ListInstances`` items of the batch's cluster (production); without
        them instance-hours come from the measured run time and the reference cluster.
    """
    cost = cost_of_batch(run, manifest, summary, prices or default_prices(), instances)
    members = summary.get("members", []) if summary else []
    failed = sum(1 for m in members if m.get("status") == "failed") if summary else len(manifest.members)
    status = str(summary["status"]) if summary and run.state == "SUCCEEDED" else "failed"
    return BatchRecord(
        window_id=run.window_id,
        window_start=window_start,
        batch_id=run.batch_id,
        workload=run.workload,
        status=status,
        tenants=list(manifest.tenants),
        requests=len(manifest.members),
        failed_requests=failed,
        rows=int(summary.get("rows", 0)) if summary else 0,
        backend=run.backend,
        cluster_id=run.cluster_id,
        started_at=datetime.fromisoformat(run.started_at),
        finished_at=datetime.fromisoformat(run.finished_at),
        run_seconds=float(run.run_seconds),
        spark_seconds=float(summary["duration_s"]) if summary else None,
        features_snapshot_id=summary.get("features_snapshot_id") if summary else None,
        scores_snapshot_id=summary.get("scores_snapshot_id") if summary else None,
        recorded_at=datetime.now(UTC),
        cluster_created=bool(run.cluster_created),
        instance_hours_on_demand=cost.on_demand_hours,
        instance_hours_spot=cost.spot_hours,
        usage=list(cost.usage),
        cost_ec2_usd=cost.breakdown.ec2_usd,
        cost_emr_fee_usd=cost.breakdown.emr_fee_usd,
        cost_s3_usd=cost.breakdown.s3_usd,
        cost_total_usd=cost.breakdown.total_usd,
        cost_basis=cost.basis,
        price_table=cost.price_table,
        tenant_costs=list(cost.tenants),
    )
