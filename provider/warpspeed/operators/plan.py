"""Operator that plans a window's batches and writes one manifest per batch."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Context, XComArg

from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.hooks.sqs import SqsIntakeHook
from warpspeed.intake.schema import ScoringRequest
from warpspeed.models.probe import Unavailable, probe_models, refusals, unavailable_document, unavailable_pairs
from warpspeed.operators._base import WarpSpeedOperator
from warpspeed.planning.batches import WindowPlan, plan_window
from warpspeed.planning.refusals import PlanRefusals
from warpspeed.planning.routing import route_plan
from warpspeed.window.carryover import CarryOverChain, PlanInput
from warpspeed.window.manifests import BatchManifest, IntakeManifest, models_uri
from warpspeed.window.rule import Window


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


class PlanBatchesOperator(WarpSpeedOperator):
    """Plan the window and return, per workload, the URIs of its batch manifests.

    Requests earlier windows carried over (``max_batches_per_window``) are merged in first and
    keep their age; what this window cannot run is carried over to the next one through a
    pending document (see :mod:`warpspeed.window.carryover`). A retry plans from the same input and
    rewrites the same manifests. A request for a model version that does not exist (or lacks
    inputs) with no valid request for its pair to supersede it is refused to the DLQ with its
    reason (:mod:`warpspeed.planning.refusals`) and listed under ``refused``.

    The return value feeds ``ScoreBatchesOperator.partial(...).expand_kwargs(...)``:
    ``[{"workload": "scoring", "batch_manifest_uris": [...]}, ...]``, batches in submission
    order (high-priority lanes first).

    :param intake_manifest_uri: the intake manifest's URI (usually the collect task's output).
    :param workloads_file: workloads YAML (planning settings per workload).
    """

    template_fields = ("intake_manifest_uri", "workloads_file")
    ui_color = "#e8f8f5"

    def __init__(self, *, intake_manifest_uri: str | XComArg, workloads_file: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.intake_manifest_uri = intake_manifest_uri
        self.workloads_file = workloads_file

    def _probe(self, workloads: WorkloadCatalog, requests: Sequence[ScoringRequest]) -> list[Unavailable]:
        """Find requested model versions that are missing or lack inputs in their feature table."""
        catalog = None

        def columns(table: str) -> list[str]:
            nonlocal catalog
            catalog = catalog or self.settings.catalog.load()
            return [f.name for f in catalog.load_table(table).schema().fields]

        return probe_models(workloads, {(r.workload, r.model, r.model_version) for r in requests},
                            self.storage, models_uri(self.settings.storage_prefix), columns)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Plan, write the manifests, the pending document and the plan; then move the head."""
        window = self.window(context)
        prefix = self.settings.storage_prefix
        intake = IntakeManifest.from_json(self.storage.read_text(str(self.intake_manifest_uri)))
        chain = CarryOverChain(self.storage, prefix)
        plan_input = chain.resolve(window.id)
        workloads = WorkloadCatalog.load(self.workloads_file)
        layout = window.layout(prefix)
        requests = [*intake.requests, *(p.request for p in plan_input.pending)]
        unavailable = self._probe(workloads, requests)
        record = PlanRefusals(self.storage, layout.refused_uri,
                              lambda: SqsIntakeHook(aws_conn_id=self.settings.aws_conn_id))
        earlier = {rid: e["reason"] for rid, e in record.recorded().items()}
        refused = record.refuse(window.id, lambda: self.settings.require_queues()[1],
                                refusals(requests, unavailable, earlier), intake.sources)
        out = {e["request_id"] for e in refused}
        plan = route_plan(plan_window(window.id, [r for r in intake.requests if r.request_id not in out],
                                      workloads.planning(),
                                      tuple(p for p in plan_input.pending if p.request.request_id not in out),
                                      unavailable_pairs(unavailable)), workloads)
        chain.check(window.id, plan_input, plan.pending)
        uris: dict[str, str] = {}
        for manifest in batch_manifests(plan, window, prefix, workloads):
            uris[manifest.batch_id] = layout.batch_uri(manifest.batch_id)
            self.storage.write_text(uris[manifest.batch_id], manifest.to_json())
        pending_uri = chain.record(
            window.id, plan_input, plan.pending, {s.request.request_id: s.reason for s in plan.carried_over}
        )
        self.storage.write_text(
            layout.plan_uri,
            plan_document(plan, uris, intake_requests=len(intake.requests), plan_input=plan_input,
                          pending_uri=pending_uri, unavailable=unavailable_document(unavailable),
                          refused=refused),
        )
        moved = chain.advance(window.id, plan_input)
        self.log.info(
            "Window %s (%s plan): %d new + %d carried-in requests -> %d batches over %s; "
            "%d superseded, %d refused to the DLQ, %d carried over to %s%s",
            window.id, plan_input.mode, len(intake.requests), len(plan_input.pending), len(plan.batches),
            ", ".join(plan.workloads) or "no workloads", len(plan.superseded), len(refused), len(plan.carried_over),
            pending_uri, "" if moved else " (head unchanged)",
        )
        for b in plan.batches:
            self.log.info("  %s  %-10s %3d tenants %8d rows  %-5s  %s", b.batch_id, b.priority, len(b.tenants),
                          b.estimated_rows, b.engine, uris[b.batch_id])
        by_workload: dict[str, list[str]] = {w: [] for w in plan.workloads}
        for b in plan.batches:
            by_workload[b.workload].append(uris[b.batch_id])
        return [{"workload": w, "batch_manifest_uris": u} for w, u in by_workload.items()]
