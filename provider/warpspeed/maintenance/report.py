"""Before/after figures of a maintenance run and the ``warpspeed.maintenance_runs`` table.

:func:`table_stats` measures a table with pyiceberg (data files, mean file size, snapshots,
manifests, metadata bytes and the time to plan a full scan); :class:`MaintenanceRunRecord` is
one row of ``warpspeed.maintenance_runs``, whose :class:`~warpspeed.ledger.tables.TableDef` lives here
(this module owns that table; :mod:`warpspeed.ledger.tables` owns the scoring tables).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.types import (
    DoubleType,
    IntegerType,
    ListType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from warpspeed.ledger.tables import TableDef

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

MAINTENANCE_RUNS_TABLE = "warpspeed.maintenance_runs"

STAT_FIELDS = ("data_files", "mean_file_bytes", "snapshots", "manifests", "metadata_bytes", "plan_seconds")


@dataclass(frozen=True)
class TableStats:
    """A table's health figures at one moment.

    :param plan_seconds: wall time of planning a full scan (``scan().plan_files()``) on a
        freshly loaded table: reading the manifest list and every manifest.
    """

    data_files: int
    data_bytes: int
    snapshots: int
    manifests: int
    metadata_bytes: int
    plan_seconds: float
    records: int

    @property
    def mean_file_bytes(self) -> float:
        """Return the mean data file size."""
        return self.data_bytes / self.data_files if self.data_files else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the figures as a JSON-friendly dict (with the mean file size)."""
        return {
            "data_files": self.data_files, "data_bytes": self.data_bytes, "snapshots": self.snapshots,
            "manifests": self.manifests, "metadata_bytes": self.metadata_bytes,
            "plan_seconds": round(self.plan_seconds, 4), "records": self.records,
            "mean_file_bytes": round(self.mean_file_bytes, 1),
        }


def _file_size(table: Table, location: str) -> int:
    try:
        return len(table.io.new_input(location))
    except (FileNotFoundError, OSError):
        return 0


def table_stats(table: Table) -> TableStats:
    """Measure a (freshly loaded) table: planning time first, before anything warms caches."""
    started = time.perf_counter()
    tasks = list(table.scan().plan_files())
    plan_seconds = time.perf_counter() - started
    snapshots = table.snapshots()
    current = table.current_snapshot()
    manifests = table.inspect.manifests().num_rows if current else 0
    all_manifests = table.inspect.all_manifests().select(["path", "length"]).to_pylist() if current else []
    manifest_bytes = sum({row["path"]: int(row["length"]) for row in all_manifests}.values())
    list_bytes = sum(_file_size(table, s.manifest_list) for s in snapshots if s.manifest_list)
    metadata_bytes = _file_size(table, table.metadata_location) + list_bytes + manifest_bytes
    return TableStats(
        data_files=len(tasks),
        data_bytes=sum(t.file.file_size_in_bytes for t in tasks),
        snapshots=len(snapshots),
        manifests=manifests,
        metadata_bytes=metadata_bytes,
        plan_seconds=plan_seconds,
        records=sum(t.file.record_count for t in tasks),
    )


def format_report(table: str, before: TableStats, after: TableStats) -> str:
    """Return a fixed-width before/after table for the task log."""
    b, a = before.as_dict(), after.as_dict()
    lines = [f"Maintenance report for {table}", f"{'figure':<16}{'before':>14}{'after':>14}{'ratio':>9}"]
    for name in STAT_FIELDS:
        ratio = (a[name] / b[name]) if b[name] else float("nan")
        lines.append(f"{name:<16}{b[name]:>14}{a[name]:>14}{ratio:>9.3f}")
    return "\n".join(lines)


MAINTENANCE_RUNS_SCHEMA = Schema(
    NestedField(1, "run_id", StringType(), required=False),
    NestedField(2, "table_name", StringType(), required=False),
    NestedField(3, "trigger", StringType(), required=False),
    NestedField(4, "status", StringType(), required=False),
    NestedField(5, "actions", ListType(100, StringType(), element_required=False), required=False),
    NestedField(6, "reasons", StringType(), required=False),
    NestedField(7, "backend", StringType(), required=False),
    NestedField(8, "cluster_id", StringType(), required=False),
    NestedField(9, "started_at", TimestamptzType(), required=False),
    NestedField(10, "finished_at", TimestamptzType(), required=False),
    NestedField(11, "spark_seconds", DoubleType(), required=False),
    NestedField(12, "data_files_before", LongType(), required=False),
    NestedField(13, "data_files_after", LongType(), required=False),
    NestedField(14, "mean_file_bytes_before", DoubleType(), required=False),
    NestedField(15, "mean_file_bytes_after", DoubleType(), required=False),
    NestedField(16, "snapshots_before", IntegerType(), required=False),
    NestedField(17, "snapshots_after", IntegerType(), required=False),
    NestedField(18, "manifests_before", IntegerType(), required=False),
    NestedField(19, "manifests_after", IntegerType(), required=False),
    NestedField(20, "metadata_bytes_before", LongType(), required=False),
    NestedField(21, "metadata_bytes_after", LongType(), required=False),
    NestedField(22, "plan_seconds_before", DoubleType(), required=False),
    NestedField(23, "plan_seconds_after", DoubleType(), required=False),
    NestedField(24, "records_before", LongType(), required=False),
    NestedField(25, "records_after", LongType(), required=False),
    NestedField(26, "orphans_removed", LongType(), required=False),
    NestedField(27, "snapshot_id_after", LongType(), required=False),
    NestedField(28, "result", StringType(), required=False),
    NestedField(29, "recorded_at", TimestamptzType(), required=False),
)
MAINTENANCE_RUNS = TableDef(
    MAINTENANCE_RUNS_TABLE, MAINTENANCE_RUNS_SCHEMA, PartitionSpec(),
    "Iceberg maintenance ledger: one row per (maintenance run, table) with before/after figures.",
)


@dataclass(frozen=True)
class MaintenanceRunRecord:
    """One row of ``warpspeed.maintenance_runs``."""

    run_id: str
    table_name: str
    trigger: str
    status: str
    actions: list[str]
    reasons: str
    backend: str
    cluster_id: str
    started_at: datetime
    finished_at: datetime
    spark_seconds: float
    before: TableStats
    after: TableStats
    orphans_removed: int
    snapshot_id_after: int | None
    result: str
    recorded_at: datetime

    def row(self) -> dict[str, Any]:
        """Return the row with the before/after figures spread over columns."""
        row: dict[str, Any] = {
            k: getattr(self, k) for k in (
                "run_id", "table_name", "trigger", "status", "actions", "reasons", "backend", "cluster_id",
                "started_at", "finished_at", "spark_seconds", "orphans_removed", "snapshot_id_after",
                "result", "recorded_at",
            )
        }
        for side, stats in (("before", self.before), ("after", self.after)):
            row[f"data_files_{side}"] = stats.data_files
            row[f"mean_file_bytes_{side}"] = stats.mean_file_bytes
            row[f"snapshots_{side}"] = stats.snapshots
            row[f"manifests_{side}"] = stats.manifests
            row[f"metadata_bytes_{side}"] = stats.metadata_bytes
            row[f"plan_seconds_{side}"] = stats.plan_seconds
            row[f"records_{side}"] = stats.records
        return row


def ensure_maintenance_runs_table(catalog: Catalog) -> bool:
    """Create ``warpspeed.maintenance_runs`` (and its namespace) if missing; tell whether it was created."""
    namespace = MAINTENANCE_RUNS_TABLE.split(".", maxsplit=1)[0]
    catalog.create_namespace_if_not_exists(namespace)
    if catalog.table_exists(MAINTENANCE_RUNS_TABLE):
        return False
    catalog.create_table(
        MAINTENANCE_RUNS_TABLE,
        schema=MAINTENANCE_RUNS.schema,
        partition_spec=MAINTENANCE_RUNS.partition_spec,
        properties={"comment": MAINTENANCE_RUNS.description, "format-version": "2"},
    )
    return True
