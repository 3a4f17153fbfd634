"""Operator that plans a window's batches and writes one manifest per batch."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Context, XComArg

from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.hooks.sqs import SqsIntakeHook
from warpspeed.lineage.datasets import DatasetUse, Lineage, queue_dataset, storage_dataset
from warpspeed.observability import metrics
from warpspeed.operators._base import WarpSpeedOperator, aws_template_fields
from warpspeed.planning.service import PlanService


class PlanBatchesOperator(WarpSpeedOperator):
    """Plan the window and return, per workload, the URIs of its batch manifests.

    Requests earlier windows carried over (``max_batches_per_window``) are merged in first and
    keep their age; what this window cannot run is carried over to the next one through a
    pending document (see :mod:`warpspeed.window.carryover`). A retry plans from the same input and
    rewrites the same manifests. A request for a model version that does not exist (or lacks
    inputs) with no valid request for its pair to supersede it is refused to the DLQ with its
    reason (:mod:`warpspeed.planning.refusals`) and listed under ``refused``. The steps are
    :class:`warpspeed.planning.service.PlanService`'s.

    The return value feeds ``ScoreBatchesOperator.partial(...).expand_kwargs(...)``:
    ``[{"workload": "scoring", "batch_manifest_uris": [...]}, ...]``, batches in submission
    order (high-priority lanes first).

    :param intake_manifest_uri: the intake manifest's URI (usually the collect task's output).
    :param workloads_file: workloads YAML (planning settings per workload).
    """

    s3_component = "plan"

    template_fields = aws_template_fields("intake_manifest_uri", "workloads_file")
    ui_color = "#e8f8f5"

    def __init__(self, *, intake_manifest_uri: str | XComArg, workloads_file: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.intake_manifest_uri = intake_manifest_uri
        self.workloads_file = workloads_file

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Plan the window through the plan service; return its manifest URIs by workload."""
        settings = self.settings
        service = PlanService(
            self.storage, settings.storage_prefix, WorkloadCatalog.load(self.workloads_file),
            load_catalog=settings.catalog.load,
            sqs_hook=lambda: SqsIntakeHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region_name),
            dlq_url=lambda: settings.require_queues()[1],
        )
        window = self.window(context)
        planned = service.plan_window(window, str(self.intake_manifest_uri))
        layout = window.layout(settings.storage_prefix)
        outputs = [DatasetUse(storage_dataset(layout.plan_uri)),
                   DatasetUse(storage_dataset(layout.batches_folder), rows=len(planned.plan.batches))]
        if planned.refused:
            outputs.append(DatasetUse(queue_dataset(settings.require_queues()[1]), rows=len(planned.refused)))
        self._lineage = Lineage(
            inputs=[DatasetUse(storage_dataset(str(self.intake_manifest_uri)), rows=planned.new_requests)],
            outputs=outputs,
            run={"window_id": window.id, "batches": len(planned.plan.batches),
                 "carried_in": len(planned.plan_input.pending), "carried_over": len(planned.plan.carried_over)},
        )
        metrics.refused(len(planned.refused))
        return planned.manifest_uris_by_workload()
