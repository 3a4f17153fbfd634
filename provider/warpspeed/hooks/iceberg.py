"""The batch ledger: one row per scored batch in ``warpspeed.batch_runs`` (written with pyiceberg).

Each row carries the batch's instance-hours by market and type, its cost by line item and
each tenant's share of that cost (by rows scored), computed by :mod:`warpspeed.ledger.cost`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache, cached_property
from typing import Any

from airflow.sdk import BaseHook

from warpspeed.config.catalog import CatalogConfig
from warpspeed.ledger.commits import commit_with_retries
from warpspeed.ledger.cost import BatchCost, InstanceUsage, TenantCost, batch_cost
from warpspeed.ledger.prices import PriceTable
from warpspeed.ledger.tables import BATCH_RUNS_SCHEMA, BATCH_RUNS_TABLE, evolve_schema
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


class IcebergLedgerHook(BaseHook):
    """Write and read the batch ledger through pyiceberg.

    :param catalog: the catalog holding ``warpspeed.batch_runs``.
    """

    def __init__(self, catalog: CatalogConfig) -> None:
        super().__init__()
        self.catalog_config = catalog

    @cached_property
    def catalog(self) -> Any:
        """Open the catalog lazily."""
        return self.catalog_config.load()

    def record_batches(self, records: Sequence[BatchRecord]) -> int:
        """Upsert rows by batch id (a retried publish rewrites, never doubles); return the count."""
        if not records:
            return 0
        import pyarrow as pa
        from pyiceberg.expressions import In

        def load() -> Any:
            return self.catalog.load_table(BATCH_RUNS_TABLE)

        commit_with_retries(load, lambda table: evolve_schema(table, BATCH_RUNS_SCHEMA))
        rows = [asdict(r) for r in records]

        def upsert(table: Any) -> None:
            data = pa.Table.from_pylist(rows, schema=table.schema().as_arrow())
            table.overwrite(data, overwrite_filter=In("batch_id", [r.batch_id for r in records]))  # type: ignore[call-arg,arg-type]

        # concurrent publish tasks commit to the one ledger table: retry conflicts, as Java Iceberg does
        commit_with_retries(load, upsert)
        self.log.info("Recorded %d batches in %s: %s", len(records), BATCH_RUNS_TABLE,
                      json.dumps([r.batch_id for r in records]))
        return len(records)

    def read_batches(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Return ledger rows (as dicts), optionally only windows starting at or after ``since``."""
        table = self.catalog.load_table(BATCH_RUNS_TABLE)
        row_filter = f"window_start >= '{since.isoformat()}'" if since else "True"
        return list(table.scan(row_filter=row_filter).to_arrow().to_pylist())
