"""Issue 23: every Warp Speed table has one home (ledger/tables.py), and each ledger row fits its table."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

from warpspeed.config.catalog import CatalogConfig
from warpspeed.ledger.records import BatchRecord
from warpspeed.ledger.tables import (
    BATCH_RUNS_SCHEMA,
    MAINTENANCE_RUNS,
    MAINTENANCE_RUNS_SCHEMA,
    MAINTENANCE_RUNS_TABLE,
    TABLES,
    ensure_maintenance_runs_table,
)
from warpspeed.maintenance.report import MaintenanceRunRecord, TableStats


def test_each_table_is_defined_once() -> None:
    identifiers = [t.identifier for t in (*TABLES, MAINTENANCE_RUNS)]
    assert len(identifiers) == len(set(identifiers))
    assert MAINTENANCE_RUNS.identifier == MAINTENANCE_RUNS_TABLE


def test_ledger_rows_have_exactly_their_tables_columns() -> None:
    assert [f.name for f in fields(BatchRecord)] == [f.name for f in BATCH_RUNS_SCHEMA.fields]
    stats = TableStats(data_files=2, data_bytes=10, snapshots=3, manifests=1, metadata_bytes=5,
                       plan_seconds=0.1, records=7)
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    row = MaintenanceRunRecord("r", "t", "scheduled", "succeeded", ["compact"], "", "local", "c", now, now, 1.0,
                               stats, stats, 0, None, "{}", now).row()
    assert sorted(row) == sorted(f.name for f in MAINTENANCE_RUNS_SCHEMA.fields)
    assert row["mean_file_bytes_after"] == 5.0 and row["records_before"] == 7


def test_the_maintenance_ledger_is_created_once(tmp_path: Path) -> None:
    catalog = CatalogConfig.embedded(tmp_path).load()
    assert ensure_maintenance_runs_table(catalog) is True
    assert ensure_maintenance_runs_table(catalog) is False
    table = catalog.load_table(MAINTENANCE_RUNS_TABLE)
    assert [f.name for f in table.schema().fields] == [f.name for f in MAINTENANCE_RUNS_SCHEMA.fields]
    assert table.properties["comment"] == MAINTENANCE_RUNS.description
