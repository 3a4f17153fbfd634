"""Operator that plans a window's batches and writes one manifest per batch."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import Context

from warpspeed.manifests import BatchManifest, IntakeManifest, models_uri
from warpspeed.operators._base import WarpSpeedOperator
from warpspeed.planner import WindowPlan, plan_window
from warpspeed.windows import Window
from warpspeed.workloads import WorkloadCatalog


def plan_document(plan: WindowPlan, batch_uris: dict[str, str]) -> str:
    """Return the window's plan as JSON: batches in order, and every set-aside request."""
    return json.dumps(
        {
            "schema": "warpspeed.plan/v1",
            "window_id": plan.window_id,
            "batches": [
                {"batch_id": b.batch_id, "workload": b.workload, "priority": b.priority,
                 "tenants": list(b.tenants), "requests": len(b.members),
                 "estimated_rows": b.estimated_rows, "manifest_uri": batch_uris[b.batch_id]}
                for b in plan.batches
            ],
            "superseded": [{"request_id": s.request.request_id, "reason": s.reason} for s in plan.superseded],
            "carried_over": [{"request_id": s.request.request_id, "reason": s.reason} for s in plan.carried_over],
        },
        indent=1,
        sort_keys=True,
    )


def batch_manifests(plan: WindowPlan, window: Window, storage_prefix: str) -> list[BatchManifest]:
    """Turn a plan's batches into manifests (pure)."""
    layout = window.layout(storage_prefix)
    return [
        BatchManifest(
            batch_id=b.batch_id,
            window_id=window.id,
            workload=b.workload,
            members=b.members,
            estimated_rows=b.estimated_rows,
            models_uri=models_uri(storage_prefix),
            summary_uri=layout.summary_uri(b.batch_id),
        )
        for b in plan.batches
    ]


class PlanBatchesOperator(WarpSpeedOperator):
    """Plan the window and return, per workload, the URIs of its batch manifests.

    The return value feeds ``ScoreBatchesOperator.partial(...).expand_kwargs(...)``:
    ``[{"workload": "scoring", "batch_manifest_uris": [...]}, ...]``.

    :param intake_manifest_uri: the collect task's output.
    :param workloads_file: workloads YAML (planning settings per workload).
    """

    template_fields = ("intake_manifest_uri", "workloads_file")
    ui_color = "#e8f8f5"

    def __init__(self, *, intake_manifest_uri: str, workloads_file: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.intake_manifest_uri = intake_manifest_uri
        self.workloads_file = workloads_file

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Plan, write the manifests (deterministic ids, so a retry rewrites the same files)."""
        window = self.window(context)
        intake = IntakeManifest.from_json(self.storage.read_text(self.intake_manifest_uri))
        plan = plan_window(window.id, intake.requests, WorkloadCatalog.load(self.workloads_file).planning())
        layout = window.layout(self.settings.storage_prefix)
        uris: dict[str, str] = {}
        for manifest in batch_manifests(plan, window, self.settings.storage_prefix):
            uris[manifest.batch_id] = layout.batch_uri(manifest.batch_id)
            self.storage.write_text(uris[manifest.batch_id], manifest.to_json())
        self.storage.write_text(layout.plan_uri, plan_document(plan, uris))
        self.log.info(
            "Window %s: %d requests -> %d batches over %s; %d superseded, %d carried over",
            window.id, len(intake.requests), len(plan.batches), ", ".join(plan.workloads) or "no workloads",
            len(plan.superseded), len(plan.carried_over),
        )
        for b in plan.batches:
            self.log.info("  %s  %-8s %3d tenants %7d rows  %s", b.batch_id, b.priority, len(b.tenants),
                          b.estimated_rows, uris[b.batch_id])
        return [
            {"workload": w, "batch_manifest_uris": [uris[b.batch_id] for b in plan.batches if b.workload == w]}
            for w in plan.workloads
        ]
