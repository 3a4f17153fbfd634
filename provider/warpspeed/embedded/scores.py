"""``warpspeed scores``: print (tenant, model) slices of a workload's scores table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from warpspeed.config.workloads import Workload

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog


def read_slice(catalog: Catalog, workload: Workload, tenants: Sequence[str], model: str,
               version: str | None = None) -> pa.Table:
    """Return the scores of ``tenants`` by ``model`` (one version, or all) in ``workload``'s scores table.

    Sorted by tenant and entity key. Empty when the table does not exist yet (nothing was scored).
    """
    import pyarrow as pa
    from pyiceberg.expressions import And, BooleanExpression, EqualTo, In

    tables = workload.tables
    if not catalog.table_exists(tables.scores_table):
        return pa.table({})
    condition: BooleanExpression = And(In(tables.tenant_column, set(tenants)),  # type: ignore[call-arg,arg-type]
                                       EqualTo("model", model))  # type: ignore[call-arg,arg-type]
    if version:
        condition = And(condition, EqualTo("model_version", version))  # type: ignore[call-arg,arg-type]
    rows = catalog.load_table(tables.scores_table).scan(row_filter=condition).to_arrow()
    return rows.sort_by([(c, "ascending") for c in (tables.tenant_column, *tables.entity_key)])


def render(rows: pa.Table, fmt: str, limit: int | None = None) -> str:
    """Return ``rows`` as ``csv`` (header first), ``jsonl`` or an aligned ``table``; at most ``limit`` rows."""
    shown = rows.slice(0, limit) if limit is not None else rows
    if fmt == "csv":
        import io

        from pyarrow import csv

        out = io.BytesIO()
        csv.write_csv(shown, out)
        return out.getvalue().decode("utf-8").rstrip("\n")
    records: list[dict[str, Any]] = shown.to_pylist()
    if fmt == "jsonl":
        import json

        return "\n".join(json.dumps(r, default=str) for r in records)
    names = shown.column_names
    cells = [[str(r[n]) for n in names] for r in records]
    widths = [max([len(n), *(len(row[i]) for row in cells)]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    more = rows.num_rows - shown.num_rows
    return "\n".join([*lines, *([f"… {more} more rows (--limit)"] if more > 0 else [])])
