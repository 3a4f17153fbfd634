"""The ledgers' writer: rows of ``warpspeed.batch_runs`` and ``warpspeed.s3_requests`` upserted with pyiceberg.

The rows themselves (each batch's instance-hours, cost and tenant shares; each window's S3
requests) are built by :func:`warpspeed.ledger.records.batch_record` and
:func:`warpspeed.ledger.s3_requests.window_rows`; this hook only writes and reads them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from warpspeed.config.catalog import CatalogConfig
from warpspeed.ledger.commits import commit_with_retries
from warpspeed.ledger.records import BatchRecord
from warpspeed.ledger.s3_requests import S3RequestRow
from warpspeed.ledger.tables import (
    BATCH_RUNS,
    BATCH_RUNS_SCHEMA,
    BATCH_RUNS_TABLE,
    S3_REQUESTS,
    S3_REQUESTS_SCHEMA,
    S3_REQUESTS_TABLE,
    ensure_table,
    evolve_schema,
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
        """Upsert rows by batch id (a retried publish rewrites, never doubles); return the count.

        The ledger table is created on the first write to a catalog that has none.
        """
        if not records:
            return 0
        import pyarrow as pa
        from pyiceberg.expressions import In

        if ensure_table(self.catalog, BATCH_RUNS):
            self.log.info("Created the batch ledger %s", BATCH_RUNS_TABLE)

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

    def record_s3_requests(self, window_id: str, rows: Sequence[S3RequestRow]) -> int:
        """Replace the window's rows of ``warpspeed.s3_requests`` (a retried publish rewrites); return the count."""
        import pyarrow as pa
        from pyiceberg.expressions import EqualTo

        if ensure_table(self.catalog, S3_REQUESTS):  # a catalog (or a ledger) older than the table
            self.log.info("Created the S3 request ledger %s", S3_REQUESTS_TABLE)

        def load() -> Any:
            return self.catalog.load_table(S3_REQUESTS_TABLE)

        commit_with_retries(load, lambda table: evolve_schema(table, S3_REQUESTS_SCHEMA))

        def replace_window(table: Any) -> None:
            data = pa.Table.from_pylist([asdict(r) for r in rows], schema=table.schema().as_arrow())
            table.overwrite(data, overwrite_filter=EqualTo("window_id", window_id))  # type: ignore[call-arg,arg-type]

        commit_with_retries(load, replace_window)
        self.log.info("Recorded %d requests of window %s in %s", sum(r.requests for r in rows), window_id,
                      S3_REQUESTS_TABLE)
        return len(rows)
