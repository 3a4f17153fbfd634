"""``warpspeed tables``: create a feature table from a schema, load rows into it, show what it holds.

A schema file is JSON or YAML: a mapping of column name to type, in column order::

    {"org": "string", "member_no": "long", "logins_30d": "double", "seats": "int"}

Types: ``string``, ``long`` (``bigint``), ``int`` (``integer``), ``double``, ``float``,
``boolean``, ``date``, ``timestamp`` (UTC). Rows load from CSV (with a header), Parquet or JSON
lines, cast to the table's schema. Works with whatever catalog ``[warpspeed]`` names: the
embedded REST catalog, Glue, S3 Tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warpspeed.config.yaml_file import read_mapping
from warpspeed.exceptions import WarpSpeedConfigError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

TYPE_NAMES = {
    "string": "string", "long": "int64", "bigint": "int64", "int": "int32", "integer": "int32",
    "double": "float64", "float": "float32", "boolean": "bool", "date": "date32", "timestamp": "timestamp",
}


def arrow_schema(columns: Mapping[str, Any], source: str = "schema") -> pa.Schema:
    """Return the Arrow schema of a column -> type mapping (see :data:`TYPE_NAMES`)."""
    import pyarrow as pa

    if not columns:
        raise WarpSpeedConfigError(f"{source}: no columns; write a mapping of column name to type")
    fields = []
    for name, kind in columns.items():
        arrow = TYPE_NAMES.get(str(kind).lower())
        if arrow is None:
            raise WarpSpeedConfigError(
                f"{source}: column {name!r} has type {kind!r}; use one of {', '.join(TYPE_NAMES)}"
            )
        fields.append(pa.field(str(name), pa.timestamp("us", tz="UTC") if arrow == "timestamp"
                               else getattr(pa, arrow)()))
    return pa.schema(fields)


def read_schema_file(path: Path) -> pa.Schema:
    """Read a schema file (JSON or YAML mapping of column name to type)."""
    return arrow_schema(read_mapping(path, "table schema"), str(path))


def create_table(catalog: Catalog, name: str, schema: pa.Schema, partition_by: Sequence[str] = ()) -> Table:
    """Create table ``name`` (and its namespace) with ``schema``, identity-partitioned by ``partition_by``.

    :raises WarpSpeedConfigError: when the table exists, or a partition column is not in the schema.
    """
    namespace, _, _ = name.rpartition(".")
    if not namespace:
        raise WarpSpeedConfigError(f"table {name!r}: name it <namespace>.<table>, e.g. crm.org_health")
    missing = [c for c in partition_by if c not in schema.names]
    if missing:
        raise WarpSpeedConfigError(f"table {name!r}: partition column(s) {missing} not in the schema {schema.names}")
    if catalog.table_exists(name):
        raise WarpSpeedConfigError(f"table {name!r} exists already; load rows into it with `warpspeed tables load`")
    catalog.create_namespace_if_not_exists(namespace)
    table = catalog.create_table(name, schema=schema)
    if partition_by:
        with table.update_spec() as spec:
            for column in partition_by:
                spec.add_identity(column)
    return table


def read_rows(path: Path, schema: pa.Schema) -> pa.Table:
    """Read rows from CSV (header), Parquet or JSON lines, cast to ``schema`` (its columns, in its order)."""
    import pyarrow as pa

    try:
        data = _read_file(path, schema)
        missing = [n for n in schema.names if n not in data.column_names]
        if missing:
            raise WarpSpeedConfigError(f"{path} has no column(s) {missing} of the table ({schema.names})")
        return data.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise WarpSpeedConfigError(f"{path}: its rows do not fit the table's schema: {err}") from None


def _read_file(path: Path, schema: pa.Schema) -> pa.Table:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        from pyarrow import csv

        return csv.read_csv(path, convert_options=csv.ConvertOptions(
            column_types={f.name: f.type for f in schema}, include_columns=list(schema.names),
            strings_can_be_null=False))
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if suffix in (".jsonl", ".json", ".ndjson"):
        from pyarrow import json as pajson

        return pajson.read_json(path, parse_options=pajson.ParseOptions(explicit_schema=schema))
    raise WarpSpeedConfigError(f"{path}: load rows from .csv, .parquet or .jsonl")


def load_rows(catalog: Catalog, name: str, path: Path, *, overwrite: bool = False) -> int:
    """Append (or with ``overwrite``, replace) the rows of ``path`` into table ``name``; return the row count."""
    table = catalog.load_table(name)
    rows = read_rows(path, table.schema().as_arrow())
    if overwrite:
        table.overwrite(rows)
    else:
        table.append(rows)
    return int(rows.num_rows)


def describe(catalog: Catalog, name: str) -> str:
    """Return a table's columns, partitioning and row count, as text."""
    table = catalog.load_table(name)
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None else None
    rows = int(str(summary.get("total-records") or 0)) if summary is not None else 0
    lines = [f"{name}: {rows} rows, partitioned by {[f.name for f in table.spec().fields] or 'nothing'}"]
    lines += [f"  {f.name:<24} {f.field_type}" for f in table.schema().fields]
    return "\n".join(lines)
