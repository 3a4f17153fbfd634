"""Operator that records a window's scored batches in the batch ledger and announces the tables written."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from airflow.sdk import Context

from warpspeed.assets.iceberg import SCORED_TABLES, table_asset
from warpspeed.exceptions import NotRetryableError
from warpspeed.hooks.iceberg import IcebergLedgerHook
from warpspeed.ledger.records import BatchRecord, batch_record, default_prices
from warpspeed.ledger.s3_requests import count_requests, read_request_log, window_rows
from warpspeed.ledger.tables import BATCH_RUNS_TABLE
from warpspeed.lineage.datasets import DatasetUse, Lineage, iceberg_table, storage_dataset
from warpspeed.observability import metrics
from warpspeed.operators._base import WarpSpeedOperator, aws_template_fields
from warpspeed.sensors.sqs import CLOSED_AT_KEY
from warpspeed.window.manifests import PLAN_SCHEMA, BatchManifest, BatchRun, WindowLayout, load_document


def _flatten(nested: Iterable[Any] | None) -> list[str]:
    """Return the strings of a list of lists, however deep.

    A mapped task's output (a lazy XCom sequence) is read in one slice: iterating it asks for one
    item past its end, which Airflow logs as an "XCom not found" ERROR.
    """
    out: list[str] = []
    items = nested[:] if isinstance(nested, Sequence) and not isinstance(nested, str) else nested
    for item in items or []:
        if isinstance(item, str):
            out.append(item)
        elif item is not None:
            out.extend(_flatten(item))
    return out


class PublishBatchesOperator(WarpSpeedOperator):
    """Write one ``warpspeed.batch_runs`` row per batch; return the batch ids recorded.

    It runs whatever its upstream did (``trigger_rule="all_done"`` in the DAG): the batches of
    every workload that finished are recorded even when another workload's score task failed,
    and then the task fails, so the run ends failed and ops see it. The batches come from the
    window's plan document (every planned batch's run record the score tasks wrote, succeeded
    or failed) plus ``run_uris``; a planned batch without a succeeded run, or a missing plan,
    fails the task after the rows are written (without retries: another try records the same).

    On success it emits one asset event per scores table the window's batches wrote
    (:func:`warpspeed.assets.iceberg.table_asset`, extra ``{window_id, batches, rows,
    snapshot_id}``) through each ``outlets`` alias named ``warpspeed_scored_tables``, and sends the
    window's metrics (:mod:`warpspeed.observability.metrics`).

    :param run_uris: batch run record URIs (a list, or the list of lists that a mapped score
        task returns); with a failed mapped task, only the others' lists arrive here.
    :param window_sensor_task_id: the task that waited for the window; when it recorded the close
        (:data:`~warpspeed.sensors.sqs.CLOSED_AT_KEY`), the close-to-publish time is measured from
        there, else from the window's end.
    """

    s3_component = "publish"

    template_fields = aws_template_fields("run_uris")
    ui_color = "#d5f5e3"

    def __init__(self, *, run_uris: Any, window_sensor_task_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_uris = run_uris
        self.window_sensor_task_id = window_sensor_task_id

    @cached_property
    def hook(self) -> IcebergLedgerHook:
        """Build the ledger hook lazily."""
        return IcebergLedgerHook(self.settings.catalog)

    def _planned_runs(self, layout: WindowLayout) -> tuple[list[str], list[str]]:
        """Return the run record URIs of the window's planned batches, and the batches without one."""
        if not self.storage.exists(layout.plan_uri):
            return [], []
        plan = load_document(self.storage.read_text(layout.plan_uri), PLAN_SCHEMA, layout.plan_uri)
        found, missing = [], []
        for batch in plan.get("batches", []):
            uri = layout.run_uri(batch["batch_id"])
            if self.storage.exists(uri):
                found.append(uri)
            else:
                missing.append(batch["batch_id"])
        return found, missing

    def _record_s3_requests(self, context: Context, window: Any) -> None:
        """Record the window's S3 requests (embedded S3 server: its request log) in ``warpspeed.s3_requests``.

        The window's requests are those of its steps' components since its run started (one run
        at a time). Elsewhere (AWS) nothing is counted here: see docs/ops.md for access logs.
        """
        log_path = self.settings.s3_request_log()
        if log_path is None:
            return
        run = context.get("dag_run")
        started = getattr(run, "start_date", None) or window.start
        span = (started, datetime.now(UTC))
        counts = count_requests(read_request_log(log_path, span[0].timestamp(), span[1].timestamp()))
        self.hook.record_s3_requests(window.id, window_rows(window.id, window.start, counts, default_prices().s3,
                                                            span=span))

    def execute(self, context: Context) -> list[str]:
        """Read each run record, manifest and summary, upsert the ledger rows, then fail on failures."""
        window = self.window(context)
        layout = window.layout(self.settings.storage_prefix)
        planned, not_run = self._planned_runs(layout)
        records = []
        tables: dict[str, list[BatchRecord]] = {}
        failed: list[str] = [f"{b} (no run record: its score task never ran it)" for b in not_run]
        for uri in dict.fromkeys([*_flatten(self.run_uris), *planned]):
            run = BatchRun.from_json(self.storage.read_text(uri))
            manifest = BatchManifest.from_json(self.storage.read_text(run.batch_manifest_uri))
            summary = (
                json.loads(self.storage.read_text(run.summary_uri))
                if run.state == "SUCCEEDED" and self.storage.exists(run.summary_uri)
                else None
            )
            records.append(batch_record(run, manifest, summary, window.start))
            if run.state != "SUCCEEDED":
                failed.append(f"{run.batch_id} ({run.workload}): {run.state} {run.reason or ''}".rstrip())
            elif records[-1].rows:
                tables.setdefault(manifest.scores_table, []).append(records[-1])
        self.hook.record_batches(records)
        self._record_s3_requests(context, window)
        rows = sum(r.rows for r in records)
        self.log.info("Window %s: %d batches, %d rows scored", window.id, len(records), rows)
        self._lineage = lambda: Lineage(
            inputs=[DatasetUse(storage_dataset(layout.runs_folder), rows=len(records))],
            outputs=[DatasetUse(iceberg_table(self.settings.catalog, BATCH_RUNS_TABLE), rows=len(records))],
            run={"window_id": window.id, "batches": len(records), "rows": rows, "failed": len(failed)},
        )
        metrics.published(records, closed_at=self._closed_at(context, window.end), published_at=datetime.now(UTC))
        if not self.storage.exists(layout.plan_uri):
            raise NotRetryableError(
                f"window {window.id}: no plan document at {layout.plan_uri}; the plan task did not run, "
                f"so nothing of this window was scored (recorded {len(records)} batches)"
            )
        if failed:
            raise NotRetryableError(
                f"window {window.id}: recorded {len(records)} batches, but {len(failed)} did not succeed:\n"
                + "\n".join(failed)
            )
        self._announce(context, window.id, tables)
        return [r.batch_id for r in records]

    def _closed_at(self, context: Context, window_end: datetime) -> datetime:
        """Return when the window closed: the sensor's record, else the window's end."""
        ti = context.get("ti")
        if self.window_sensor_task_id and ti is not None:
            recorded = ti.xcom_pull(task_ids=self.window_sensor_task_id, key=CLOSED_AT_KEY)
            if recorded:
                return datetime.fromisoformat(str(recorded))
        return window_end

    def _announce(self, context: Context, window_id: str, tables: Mapping[str, list[BatchRecord]]) -> None:
        """Emit one asset event per scores table written, through the ``warpspeed_scored_tables`` alias outlets."""
        from airflow.sdk import AssetAlias

        aliases = [o for o in self.outlets if isinstance(o, AssetAlias) and o.name == SCORED_TABLES]
        catalog = self.settings.catalog.name
        for alias in aliases:
            for table, written in sorted(tables.items()):
                snapshots = [r.scores_snapshot_id for r in written if r.scores_snapshot_id is not None]
                extra: dict[str, Any] = {"window_id": window_id, "batches": len(written),
                                         "rows": sum(r.rows for r in written),
                                         "snapshot_id": max(snapshots, default=None)}
                context["outlet_events"][alias].add(table_asset(catalog, table), extra=extra)
                self.log.info("Asset event for %s (%s): %s", table, alias.name, extra)
