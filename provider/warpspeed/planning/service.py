"""Plan one window: merge the carry-over, probe the models, refuse, plan, route, write the documents.

The plan task's whole job (:class:`~warpspeed.operators.plan.PlanBatchesOperator` only builds a
:class:`PlanService` and returns its result's URIs). In order, so that a retry plans from the same
input and rewrites the same documents:

1. Read the intake manifest and resolve where the plan starts from: the pending (carried-over)
   requests of earlier windows (:class:`~warpspeed.window.carryover.CarryOverChain`).
2. Probe every requested model version (:func:`~warpspeed.models.probe.probe_models`).
3. Refuse the requests for an unusable version that nothing supersedes: recorded, sent to the
   dead-letter queue, marked (:class:`~warpspeed.planning.refusals.PlanRefusals`).
4. Plan the rest into batches (:func:`~warpspeed.planning.batches.plan_window`) and pick each
   batch's engine (:func:`~warpspeed.planning.routing.route_plan`).
5. Check the carry-over against an earlier attempt's, write one manifest per batch, the pending
   document and ``plan.json`` (:mod:`warpspeed.planning.documents`), then move the head.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.intake.schema import ScoringRequest
from warpspeed.models.probe import Unavailable, probe_models, unavailable_document, unavailable_pairs
from warpspeed.planning.batches import WindowPlan, plan_window
from warpspeed.planning.documents import batch_manifests, plan_document
from warpspeed.planning.refusals import PlanRefusals
from warpspeed.planning.routing import route_plan
from warpspeed.storage.documents import Storage
from warpspeed.window.carryover import CarryOverChain, PlanInput
from warpspeed.window.manifests import IntakeManifest, models_uri
from warpspeed.window.rule import Window

if TYPE_CHECKING:
    from warpspeed.hooks.sqs import SqsIntakeHook

__all__ = ["PlanService", "PlannedWindow"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedWindow:
    """What planning one window decided and wrote.

    :param plan: the routed plan (batches in submission order, superseded, carried over).
    :param plan_input: where it started from (mode, the pending document merged in).
    :param new_requests: requests of the window's intake manifest.
    :param batch_uris: batch id -> the URI of its manifest.
    :param pending_uri: the pending document carrying requests to the next window, if any.
    :param refused: the refusal record's entries (refused to the dead-letter queue).
    :param head_moved: whether this attempt moved the carry-over head.
    """

    plan: WindowPlan
    plan_input: PlanInput
    new_requests: int
    batch_uris: Mapping[str, str]
    pending_uri: str | None
    refused: Sequence[Mapping[str, Any]]
    head_moved: bool

    def manifest_uris_by_workload(self) -> list[dict[str, Any]]:
        """Return ``[{"workload": ..., "batch_manifest_uris": [...]}, ...]``, batches in submission order."""
        by_workload: dict[str, list[str]] = {w: [] for w in self.plan.workloads}
        for b in self.plan.batches:
            by_workload[b.workload].append(self.batch_uris[b.batch_id])
        return [{"workload": w, "batch_manifest_uris": u} for w, u in by_workload.items()]


class PlanService:
    """Plan windows under one storage prefix for one workloads catalog.

    :param storage: where the window's documents live.
    :param storage_prefix: the ``[warpspeed] storage_prefix``.
    :param workloads: the workloads catalog (planning settings, tables and models).
    :param load_catalog: return the Iceberg catalog holding the feature tables (called once,
        only when a model version must be probed).
    :param sqs_hook: build the SQS hook that sends refusals (called only when one must be sent).
    :param dlq_url: return the dead-letter queue's URL (called only when a refusal must be sent).
    """

    def __init__(self, storage: Storage, storage_prefix: str, workloads: WorkloadCatalog, *,
                 load_catalog: Callable[[], Any], sqs_hook: Callable[[], SqsIntakeHook],
                 dlq_url: Callable[[], str]) -> None:
        self.storage, self.storage_prefix, self.workloads = storage, storage_prefix, workloads
        self.load_catalog, self.sqs_hook, self.dlq_url = load_catalog, sqs_hook, dlq_url

    def probe(self, requests: Sequence[ScoringRequest]) -> list[Unavailable]:
        """Find requested model versions that are missing, or lack or misread inputs in their feature table."""
        catalog = None

        def columns(table: str) -> dict[str, str]:
            nonlocal catalog
            catalog = catalog or self.load_catalog()
            return {f.name: str(f.field_type) for f in catalog.load_table(table).schema().fields}

        return probe_models(self.workloads, {(r.workload, r.model, r.model_version) for r in requests},
                            self.storage, models_uri(self.storage_prefix), columns)

    def plan_window(self, window: Window, intake_manifest_uri: str) -> PlannedWindow:
        """Plan, write the manifests, the pending document and the plan; then move the head."""
        prefix = self.storage_prefix
        intake = IntakeManifest.from_json(self.storage.read_text(intake_manifest_uri))
        chain = CarryOverChain(self.storage, prefix)
        plan_input = chain.resolve(window.id)
        layout = window.layout(prefix)
        requests = [*intake.requests, *(p.request for p in plan_input.pending)]
        unavailable = self.probe(requests)
        refused = PlanRefusals(self.storage, layout.refused_uri, self.sqs_hook).refuse(
            window.id, self.dlq_url, requests, unavailable, intake.sources)
        out = {e["request_id"] for e in refused}
        plan = route_plan(plan_window(window.id, [r for r in intake.requests if r.request_id not in out],
                                      self.workloads.planning(),
                                      tuple(p for p in plan_input.pending if p.request.request_id not in out),
                                      unavailable_pairs(unavailable)), self.workloads)
        chain.check(window.id, plan_input, plan.pending)
        uris: dict[str, str] = {}
        for manifest in batch_manifests(plan, window, prefix, self.workloads):
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
        planned = PlannedWindow(plan, plan_input, len(intake.requests), uris, pending_uri, tuple(refused),
                                head_moved=chain.advance(window.id, plan_input))
        _log_planned(planned)
        return planned


def _log_planned(planned: PlannedWindow) -> None:
    """Log one line for the window and one per batch (the plan task's log)."""
    plan, plan_input = planned.plan, planned.plan_input
    log.info(
        "Window %s (%s plan): %d new + %d carried-in requests -> %d batches over %s; "
        "%d superseded, %d refused to the DLQ, %d carried over to %s%s",
        plan.window_id, plan_input.mode, planned.new_requests, len(plan_input.pending), len(plan.batches),
        ", ".join(plan.workloads) or "no workloads", len(plan.superseded), len(planned.refused),
        len(plan.carried_over), planned.pending_uri, "" if planned.head_moved else " (head unchanged)",
    )
    for b in plan.batches:
        log.info("  %s  %-10s %3d tenants %8d rows  %-5s  %s", b.batch_id, b.priority, len(b.tenants),
                 b.estimated_rows, b.engine, planned.batch_uris[b.batch_id])
