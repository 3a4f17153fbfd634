"""Every Iceberg table Warp Speed owns: its name, schema, partitioning and creation (pyiceberg).

The scoring tables (features, scores), the batch ledger (``warpspeed.batch_runs``, rows built
by :mod:`warpspeed.ledger.records`), the S3 request ledger (``warpspeed.s3_requests``, rows built
by :mod:`warpspeed.ledger.s3_requests`) and the maintenance ledger (``warpspeed.maintenance_runs``,
rows built by :mod:`warpspeed.maintenance.report`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    ListType,
    LongType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)

from spark_jobs.jobio import SCORES_TABLE_PROPERTIES

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

FEATURES_TABLE = "features.account_features"
SCORES_TABLE = "scores.account_scores"
BATCH_RUNS_TABLE = "warpspeed.batch_runs"
MAINTENANCE_RUNS_TABLE = "warpspeed.maintenance_runs"
S3_REQUESTS_TABLE = "warpspeed.s3_requests"

FEATURE_COLUMNS = ("engagement_7d", "engagement_30d", "intent_score", "employee_count", "annual_revenue")


def _fields(*columns: tuple[str, object], start: int = 1) -> list[NestedField]:
    """Return optional columns numbered from ``start`` in order."""
    return [NestedField(i, name, typ, required=False) for i, (name, typ) in enumerate(columns, start=start)]  # type: ignore[arg-type]


def _list(element_id: int, element: object) -> ListType:
    return ListType(element_id, element, element_required=False)  # type: ignore[arg-type]


def _identity(schema: Schema, *names: str) -> PartitionSpec:
    return PartitionSpec(
        *(
            PartitionField(schema.find_field(n).field_id, 1000 + i, IdentityTransform(), n)
            for i, n in enumerate(names)
        )
    )


@dataclass(frozen=True)
class TableDef:
    """A table's identifier, schema and partition spec."""

    identifier: str
    schema: Schema
    partition_spec: PartitionSpec
    description: str
    properties: Mapping[str, str] = field(default_factory=lambda: {"format-version": "2"})


FEATURES_SCHEMA = Schema(
    *_fields(
        ("tenant_id", StringType()),
        ("account_id", StringType()),
        *((c, DoubleType()) for c in FEATURE_COLUMNS),
        ("updated_at", TimestamptzType()),
    )
)
SCORES_SCHEMA = Schema(
    *_fields(
        ("tenant_id", StringType()),
        ("model", StringType()),
        ("model_version", StringType()),
        ("account_id", StringType()),
        ("score", DoubleType()),
        ("batch_id", StringType()),
        ("scored_at", TimestamptzType()),
    )
)
BATCH_RUNS_SCHEMA = Schema(
    *_fields(
        ("window_id", StringType()),
        ("window_start", TimestamptzType()),
        ("batch_id", StringType()),
        ("workload", StringType()),
        ("status", StringType()),
        ("tenants", _list(100, StringType())),
        ("requests", IntegerType()),
        ("failed_requests", IntegerType()),
        ("rows", LongType()),
        ("backend", StringType()),
        ("cluster_id", StringType()),
        ("started_at", TimestamptzType()),
        ("finished_at", TimestamptzType()),
        ("run_seconds", DoubleType()),
        ("spark_seconds", DoubleType()),
        ("features_snapshot_id", LongType()),
        ("scores_snapshot_id", LongType()),
        ("recorded_at", TimestamptzType()),
        # cost columns (issue 9); appended, so older ledgers evolve in place (see ensure_tables)
        ("cluster_created", BooleanType()),
        ("instance_hours_on_demand", DoubleType()),
        ("instance_hours_spot", DoubleType()),
        ("usage", _list(101, StructType(*_fields(
            ("instance_type", StringType()), ("market", StringType()), ("instance_hours", DoubleType()), start=102,
        )))),
        ("cost_ec2_usd", DoubleType()),
        ("cost_emr_fee_usd", DoubleType()),
        ("cost_s3_usd", DoubleType()),
        ("cost_total_usd", DoubleType()),
        ("cost_basis", StringType()),
        ("price_table", StringType()),
        ("tenant_costs", _list(105, StructType(*_fields(
            ("tenant_id", StringType()), ("rows", LongType()), ("requests", IntegerType()), ("cost_usd", DoubleType()),
            start=106,
        )))),
    )
)

S3_REQUESTS_SCHEMA = Schema(
    *_fields(
        ("window_id", StringType()),
        ("window_start", TimestamptzType()),
        ("component", StringType()),
        ("operation", StringType()),
        ("request_class", StringType()),
        ("requests", LongType()),
        ("cost_usd", DoubleType()),
        ("measured_from", TimestamptzType()),
        ("measured_to", TimestamptzType()),
        ("source", StringType()),
        ("recorded_at", TimestamptzType()),
    )
)

#: A table's health figures, measured before and after each maintenance run (``<name>_before``,
#: ``<name>_after`` columns of ``warpspeed.maintenance_runs``; :class:`~warpspeed.maintenance.report.TableStats`).
MAINTENANCE_STAT_COLUMNS: tuple[tuple[str, object], ...] = (
    ("data_files", LongType()),
    ("mean_file_bytes", DoubleType()),
    ("snapshots", IntegerType()),
    ("manifests", IntegerType()),
    ("metadata_bytes", LongType()),
    ("plan_seconds", DoubleType()),
    ("records", LongType()),
)
MAINTENANCE_RUNS_SCHEMA = Schema(
    *_fields(
        ("run_id", StringType()),
        ("table_name", StringType()),
        ("trigger", StringType()),
        ("status", StringType()),
        ("actions", _list(100, StringType())),
        ("reasons", StringType()),
        ("backend", StringType()),
        ("cluster_id", StringType()),
        ("started_at", TimestamptzType()),
        ("finished_at", TimestamptzType()),
        ("spark_seconds", DoubleType()),
        *((f"{name}_{side}", typ) for name, typ in MAINTENANCE_STAT_COLUMNS for side in ("before", "after")),
        ("orphans_removed", LongType()),
        ("snapshot_id_after", LongType()),
        ("result", StringType()),
        ("recorded_at", TimestamptzType()),
    )
)

BATCH_RUNS = TableDef(BATCH_RUNS_TABLE, BATCH_RUNS_SCHEMA, PartitionSpec(), "Batch ledger: one row per scored batch.")
"""Created by :func:`ensure_tables` and, in a catalog without it, by the first publish."""
S3_REQUESTS = TableDef(S3_REQUESTS_TABLE, S3_REQUESTS_SCHEMA, PartitionSpec(),
                       "S3 requests per window: one row per (window, component, operation), priced.")
"""Created by :func:`ensure_tables` and, in a catalog without it, by the first publish that counted requests."""
SCORES = TableDef(SCORES_TABLE, SCORES_SCHEMA, _identity(SCORES_SCHEMA, "tenant_id", "model"),
                  "Latest score per (tenant, model, account); a batch overwrites its slices.", SCORES_TABLE_PROPERTIES)
"""The scores table's definition (its schema and partitioning, also for scores-shaped tables of tests and benches)."""
TABLES: tuple[TableDef, ...] = (
    TableDef(FEATURES_TABLE, FEATURES_SCHEMA, _identity(FEATURES_SCHEMA, "tenant_id"),
             "Tier-2 account features, one row per (tenant, account)."),
    SCORES,
    BATCH_RUNS,
    S3_REQUESTS,
)
"""The tables :func:`ensure_tables` creates for scoring (the maintenance ledger has its own)."""
MAINTENANCE_RUNS = TableDef(
    MAINTENANCE_RUNS_TABLE, MAINTENANCE_RUNS_SCHEMA, PartitionSpec(),
    "Iceberg maintenance ledger: one row per (maintenance run, table) with before/after figures.",
)


def evolve_schema(table: Table, schema: Schema) -> list[str]:
    """Add the columns of ``schema`` that ``table`` lacks (by name); return their names."""
    missing = [f.name for f in schema.fields if f.name not in {c.name for c in table.schema().fields}]
    if missing:
        with table.update_schema() as update:
            update.union_by_name(schema)
    return missing


def _create(catalog: Catalog, table: TableDef) -> None:
    catalog.create_table(
        table.identifier,
        schema=table.schema,
        partition_spec=table.partition_spec,
        properties={"comment": table.description, **table.properties},
    )


def ensure_tables(catalog: Catalog) -> list[str]:
    """Create missing namespaces and tables, add new columns to old ones; return those created."""
    created = []
    existing_namespaces = {ns[0] for ns in catalog.list_namespaces()}
    for table in TABLES:
        namespace = table.identifier.split(".")[0]
        if namespace not in existing_namespaces:
            catalog.create_namespace_if_not_exists(namespace)
            existing_namespaces.add(namespace)
        if not catalog.table_exists(table.identifier):
            _create(catalog, table)
            created.append(table.identifier)
        else:
            evolve_schema(catalog.load_table(table.identifier), table.schema)
    return created


def ensure_table(catalog: Catalog, table: TableDef) -> bool:
    """Create ``table`` (and its namespace) if missing; tell whether this call created it.

    Two writers may find it missing at once (two publish tasks of a first window): the one that
    loses the race finds it created and carries on.
    """
    from pyiceberg.exceptions import TableAlreadyExistsError

    catalog.create_namespace_if_not_exists(table.identifier.split(".", maxsplit=1)[0])
    if catalog.table_exists(table.identifier):
        return False
    try:
        _create(catalog, table)
    except TableAlreadyExistsError:
        return False
    return True


def ensure_maintenance_runs_table(catalog: Catalog) -> bool:
    """Create ``warpspeed.maintenance_runs`` (and its namespace) if missing; tell whether it was created."""
    return ensure_table(catalog, MAINTENANCE_RUNS)
