"""Operator that records a window's scored batches in the batch ledger."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cached_property
from typing import Any

from airflow.sdk import Context

from warpspeed.hooks.iceberg_ledger import IcebergLedgerHook, batch_record
from warpspeed.manifests import BatchManifest, BatchRun
from warpspeed.operators._base import WarpSpeedOperator


def _flatten(nested: Iterable[Any] | None) -> list[str]:
    out: list[str] = []
    for item in nested or []:
        if isinstance(item, str):
            out.append(item)
        elif item is not None:
            out.extend(_flatten(item))
    return out


class PublishBatchesOperator(WarpSpeedOperator):
    """Write one ``warpspeed.batch_runs`` row per batch; return the batch ids recorded.

    :param run_uris: batch run record URIs (a list, or the list of lists that a mapped score
        task returns).
    """

    template_fields = ("run_uris",)
    ui_color = "#d5f5e3"

    def __init__(self, *, run_uris: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_uris = run_uris

    @cached_property
    def hook(self) -> IcebergLedgerHook:
        """Build the ledger hook lazily."""
        return IcebergLedgerHook(self.settings.catalog)

    def execute(self, context: Context) -> list[str]:
        """Read each run record, manifest and summary, then upsert the ledger rows."""
        window = self.window(context)
        records = []
        for uri in _flatten(self.run_uris):
            run = BatchRun.from_json(self.storage.read_text(uri))
            manifest = BatchManifest.from_json(self.storage.read_text(run.batch_manifest_uri))
            summary = (
                json.loads(self.storage.read_text(run.summary_uri))
                if run.state == "SUCCEEDED" and self.storage.exists(run.summary_uri)
                else None
            )
            records.append(batch_record(run, manifest, summary, window.start))
        self.hook.record_batches(records)
        rows = sum(r.rows for r in records)
        self.log.info("Window %s: %d batches, %d rows scored", window.id, len(records), rows)
        return [r.batch_id for r in records]
