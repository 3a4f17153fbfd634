"""The batch ledger: one row per scored batch in ``warpspeed.batch_runs`` (written with pyiceberg)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from warpspeed.catalog import CatalogConfig
from warpspeed.manifests import BatchManifest, BatchRun
from warpspeed.tables import BATCH_RUNS_TABLE


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


def batch_record(
    run: BatchRun, manifest: BatchManifest, summary: Mapping[str, Any] | None, window_start: datetime
) -> BatchRecord:
    """Build the ledger row of one batch from its run record, manifest and result summary."""
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

        table = self.catalog.load_table(BATCH_RUNS_TABLE)
        arrow_schema = table.schema().as_arrow()
        rows = [asdict(r) for r in records]
        data = pa.Table.from_pylist(rows, schema=arrow_schema)
        table.overwrite(data, overwrite_filter=In("batch_id", [r.batch_id for r in records]))
        self.log.info("Recorded %d batches in %s: %s", len(records), BATCH_RUNS_TABLE,
                      json.dumps([r.batch_id for r in records]))
        return len(records)
