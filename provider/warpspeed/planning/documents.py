"""The documents a window's plan writes: one manifest per batch and the plan document (pure).

:func:`batch_manifests` turns a :class:`~warpspeed.planning.batches.WindowPlan` into the batch
manifests the score task reads (each names its workload's tables and models);
:func:`plan_document` is ``plan.json``: the batches in submission order and every request the
plan set aside (superseded, carried over, refused), with the versions the probe found unusable.
:mod:`warpspeed.planning.service` writes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.planning.batches import WindowPlan
from warpspeed.window.carryover import PlanInput
from warpspeed.window.manifests import BatchManifest, models_uri
from warpspeed.window.rule import Window

__all__ = ["batch_manifests", "plan_document"]


def plan_document(
    plan: WindowPlan,
    batch_uris: dict[str, str],
    *,
    intake_requests: int | None = None,
    plan_input: PlanInput | None = None,
    pending_uri: str | None = None,
    unavailable: Sequence[Mapping[str, Any]] = (),
    refused: Sequence[Mapping[str, Any]] = (),
) -> str:
    """Return the window's plan as JSON: batches in submission order, and every set-aside request."""
    doc: dict[str, Any] = {
        "schema": "warpspeed.plan/v1",
        "window_id": plan.window_id,
        "batches": [
            {"batch_id": b.batch_id, "workload": b.workload, "priority": b.priority, "lane": b.lane, "engine": b.engine,
             "tenants": list(b.tenants), "requests": len(b.members), "carried_requests": b.carried_members,
             "estimated_rows": b.estimated_rows, "manifest_uri": batch_uris[b.batch_id]}
            for b in plan.batches
        ],
        "superseded": [
            {"request_id": s.request.request_id, "reason": s.reason, "source_window_id": s.source_window_id}
            for s in plan.superseded
        ],
        "carried_over": [
            {"request_id": s.request.request_id, "tenant_id": s.request.tenant_id,
             "workload": s.request.workload, "reason": s.reason, "carried": s.carried,
             "first_window_id": s.first_window_id, "source_window_id": s.source_window_id}
            for s in plan.carried_over
        ],
    }
    if intake_requests is not None:
        doc["intake_requests"] = intake_requests
    if unavailable:
        doc["unavailable_models"] = list(unavailable)
    if refused:
        doc["refused"] = list(refused)
    if plan_input is not None:
        doc["pending"] = {
            "input_uri": plan_input.input_uri,
            "merged_requests": len(plan_input.pending),
            "output_uri": pending_uri,
        }
    return json.dumps(doc, indent=1, sort_keys=True)


def batch_manifests(
    plan: WindowPlan, window: Window, storage_prefix: str, workloads: WorkloadCatalog | None = None
) -> list[BatchManifest]:
    """Turn a plan's batches into manifests (pure); ``workloads`` names each batch's tables and models."""
    layout = window.layout(storage_prefix)
    registry = models_uri(storage_prefix)

    def data_of(workload: str) -> dict[str, Any]:
        if workloads is None or workload not in workloads.workloads:
            return {}
        return workloads[workload].manifest_fields(registry)

    return [
        BatchManifest(
            batch_id=b.batch_id,
            window_id=window.id,
            workload=b.workload,
            members=b.members,
            estimated_rows=b.estimated_rows,
            models_uri=registry,
            summary_uri=layout.summary_uri(b.batch_id),
            extra={"priority": b.priority, "lane": b.lane, "carried_requests": b.carried_members},
            engine=b.engine,
            **data_of(b.workload),
        )
        for b in plan.batches
    ]
