"""Before/after figures of a maintenance run and its row in ``warpspeed.maintenance_runs``.

:func:`table_stats` measures a table with pyiceberg (data files, mean file size, snapshots,
manifests, metadata bytes and the time to plan a full scan); :class:`MaintenanceRunRecord` is
one row of ``warpspeed.maintenance_runs``, whose name and schema live with every other Warp Speed
table in :mod:`warpspeed.ledger.tables`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from warpspeed.ledger.tables import MAINTENANCE_STAT_COLUMNS

if TYPE_CHECKING:
    from pyiceberg.table import Table

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
            for name, _type in MAINTENANCE_STAT_COLUMNS:
                row[f"{name}_{side}"] = getattr(stats, name)
        return row
