"""The Iceberg tables Warp Speed owns: schemas, partitioning and creation (pyiceberg)."""

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

FEATURE_COLUMNS = ("engagement_7d", "engagement_30d", "intent_score", "employee_count", "annual_revenue")


def _fields(*columns: tuple[str, object]) -> list[NestedField]:
    return [NestedField(i, name, typ, required=False) for i, (name, typ) in enumerate(columns, start=1)]  # type: ignore[arg-type]


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
    NestedField(1, "window_id", StringType(), required=False),
    NestedField(2, "window_start", TimestamptzType(), required=False),
    NestedField(3, "batch_id", StringType(), required=False),
    NestedField(4, "workload", StringType(), required=False),
    NestedField(5, "status", StringType(), required=False),
    NestedField(6, "tenants", ListType(100, StringType(), element_required=False), required=False),
    NestedField(7, "requests", IntegerType(), required=False),
    NestedField(8, "failed_requests", IntegerType(), required=False),
    NestedField(9, "rows", LongType(), required=False),
    NestedField(10, "backend", StringType(), required=False),
    NestedField(11, "cluster_id", StringType(), required=False),
    NestedField(12, "started_at", TimestamptzType(), required=False),
    NestedField(13, "finished_at", TimestamptzType(), required=False),
    NestedField(14, "run_seconds", DoubleType(), required=False),
    NestedField(15, "spark_seconds", DoubleType(), required=False),
    NestedField(16, "features_snapshot_id", LongType(), required=False),
    NestedField(17, "scores_snapshot_id", LongType(), required=False),
    NestedField(18, "recorded_at", TimestamptzType(), required=False),
    # cost columns (issue 9); appended, so older ledgers evolve in place (see ensure_tables)
    NestedField(19, "cluster_created", BooleanType(), required=False),
    NestedField(20, "instance_hours_on_demand", DoubleType(), required=False),
    NestedField(21, "instance_hours_spot", DoubleType(), required=False),
    NestedField(22, "usage", ListType(101, StructType(
        NestedField(102, "instance_type", StringType(), required=False),
        NestedField(103, "market", StringType(), required=False),
        NestedField(104, "instance_hours", DoubleType(), required=False),
    ), element_required=False), required=False),
    NestedField(23, "cost_ec2_usd", DoubleType(), required=False),
    NestedField(24, "cost_emr_fee_usd", DoubleType(), required=False),
    NestedField(25, "cost_s3_usd", DoubleType(), required=False),
    NestedField(26, "cost_total_usd", DoubleType(), required=False),
    NestedField(27, "cost_basis", StringType(), required=False),
    NestedField(28, "price_table", StringType(), required=False),
    NestedField(29, "tenant_costs", ListType(105, StructType(
        NestedField(106, "tenant_id", StringType(), required=False),
        NestedField(107, "rows", LongType(), required=False),
        NestedField(108, "requests", IntegerType(), required=False),
        NestedField(109, "cost_usd", DoubleType(), required=False),
    ), element_required=False), required=False),
)

TABLES: tuple[TableDef, ...] = (
    TableDef(FEATURES_TABLE, FEATURES_SCHEMA, _identity(FEATURES_SCHEMA, "tenant_id"),
             "Tier-2 account features, one row per (tenant, account)."),
    TableDef(SCORES_TABLE, SCORES_SCHEMA, _identity(SCORES_SCHEMA, "tenant_id", "model"),
             "Latest score per (tenant, model, account); a batch overwrites its slices.", SCORES_TABLE_PROPERTIES),
    TableDef(BATCH_RUNS_TABLE, BATCH_RUNS_SCHEMA, PartitionSpec(),
             "Batch ledger: one row per scored batch."),
)


def evolve_schema(table: Table, schema: Schema) -> list[str]:
    """Add the columns of ``schema`` that ``table`` lacks (by name); return their names."""
    missing = [f.name for f in schema.fields if f.name not in {c.name for c in table.schema().fields}]
    if missing:
        with table.update_schema() as update:
            update.union_by_name(schema)
    return missing


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
            catalog.create_table(
                table.identifier,
                schema=table.schema,
                partition_spec=table.partition_spec,
                properties={"comment": table.description, **table.properties},
            )
            created.append(table.identifier)
        else:
            evolve_schema(catalog.load_table(table.identifier), table.schema)
    return created
