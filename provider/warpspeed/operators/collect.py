"""Operator that drains the request queue into the window's intake manifest."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import Context

from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.hooks.sqs import SqsIntakeHook
from warpspeed.intake.service import IntakeOptions, IntakeReport, IntakeService
from warpspeed.lineage.datasets import DatasetUse, Lineage, queue_dataset, storage_dataset
from warpspeed.observability import metrics
from warpspeed.operators._base import WarpSpeedOperator, aws_template_fields


class CollectRequestsOperator(WarpSpeedOperator):
    """Drain the queue exactly once per request id and return the intake manifest's URI.

    Valid requests are written to the manifest, and their ids to the collected-id record under
    the storage prefix, before any message is deleted; invalid ones go to the dead-letter queue
    with their reasons; an id another window already collected is deleted and recorded as a
    duplicate. A retry deletes what the earlier attempt held and merges with what it wrote.
    See docs/intake.md for the guarantees.

    :param workloads_file: workloads YAML (known workloads and their models).
    :param queue_url: request queue; None means ``[warpspeed] queue_url``.
    :param dead_letter_queue_url: DLQ; None means ``[warpspeed] dead_letter_queue_url``.
    :param max_messages: most messages taken in one window.
    :param receivers: parallel receive loops.
    """

    s3_component = "intake"

    template_fields = aws_template_fields("workloads_file", "queue_url", "dead_letter_queue_url")
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        workloads_file: str,
        queue_url: str | None = None,
        dead_letter_queue_url: str | None = None,
        max_messages: int = 20_000,
        receivers: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workloads_file = workloads_file
        self.queue_url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url
        self.max_messages = max_messages
        self.receivers = receivers

    @cached_property
    def hook(self) -> SqsIntakeHook:
        """Build the SQS hook lazily."""
        return SqsIntakeHook(aws_conn_id=self.settings.aws_conn_id, region_name=self.settings.region_name)

    def execute(self, context: Context) -> str:
        """Collect the window's requests; return the manifest URI.

        Storage is checked first (one request): a wrong endpoint, bucket or key fails the task with
        the setting to fix before any message is received.
        """
        queue_url, dlq_url = self.settings.require_queues()
        queue_url, dlq_url = self.queue_url or queue_url, self.dead_letter_queue_url or dlq_url
        self.settings.check_storage(self.storage)
        window = self.window(context)
        report = IntakeService(self.hook).collect_window(
            queue_url=queue_url,
            dlq_url=dlq_url,
            window_id=window.id,
            manifest_uri=window.layout(self.settings.storage_prefix).intake_uri,
            storage=self.storage,
            allowed_models=WorkloadCatalog.load(self.workloads_file).allowed_models,
            options=IntakeOptions(max_messages=self.max_messages, receivers=self.receivers,
                                  visibility_timeout=self.settings.intake_visibility_timeout),
            storage_prefix=self.settings.storage_prefix,
        )
        self._lineage = intake_lineage(queue_url, dlq_url, report, window.id)
        metrics.collected(report)
        return report.manifest_uri


def intake_lineage(queue_url: str, dlq_url: str, report: IntakeReport, window_id: str) -> Lineage:
    """Return what a collect read (the queue) and wrote (the intake manifest, the DLQ)."""
    outputs = [DatasetUse(storage_dataset(report.manifest_uri), rows=report.requests_in_manifest)]
    if report.dead_lettered:
        outputs.append(DatasetUse(queue_dataset(dlq_url), rows=report.dead_lettered))
    return Lineage(inputs=[DatasetUse(queue_dataset(queue_url), rows=report.received)], outputs=outputs,
                   run={"window_id": window_id, "received": report.received, "valid": report.valid,
                        "invalid": report.invalid, "duplicates": report.duplicates})
