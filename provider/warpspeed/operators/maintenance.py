"""Operators that plan and run Iceberg table maintenance (see :mod:`warpspeed.maintenance.service`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from airflow.sdk import Context

from warpspeed.compute.base import ComputeBackend
from warpspeed.compute.flow import JobFlow, StepStatus
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.maintenance_policy import MaintenancePolicy
from warpspeed.lineage.datasets import DatasetUse, Lineage, iceberg_table, storage_dataset
from warpspeed.maintenance.plan import TriggerKind
from warpspeed.maintenance.service import IcebergMaintenanceService, MaintenanceOutcome, on_demand_restart
from warpspeed.operators._base import WarpSpeedOperator, aws_template_fields
from warpspeed.operators._compute import FlowOperator
from warpspeed.storage.documents import run_key

_RUN_TYPES: dict[str, TriggerKind] = {"scheduled": "scheduled", "asset_triggered": "asset"}


def trigger_of(context: Context) -> TriggerKind:
    """Return how the DAG run started: ``scheduled`` (daily), ``asset`` (scores commits) or ``manual``."""
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    value = getattr(run_type, "value", run_type)
    return _RUN_TYPES.get(str(value), "manual")


class PlanIcebergMaintenanceOperator(WarpSpeedOperator):
    """Decide what is due per registered table; return ``[{table, plan_uri}]`` for tables with work.

    Scheduled and manual runs plan every table; asset-triggered runs only the asset-driven
    tables that took ``trigger.min_new_commits`` commits and were not maintained within
    ``trigger.min_interval_minutes``.

    :param policy_file: the maintenance registry and policy YAML.
    """

    s3_component = "maintenance"

    template_fields = aws_template_fields("policy_file")
    ui_color = "#d6eaf8"

    def __init__(self, *, policy_file: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy_file = policy_file

    @cached_property
    def service(self) -> IcebergMaintenanceService:
        """Build the maintenance service lazily."""
        return IcebergMaintenanceService(self.settings, self.storage)

    def execute(self, context: Context) -> list[dict[str, str]]:
        """Plan every table and write the plan documents."""
        policy = MaintenancePolicy.load(self.policy_file)
        trigger = trigger_of(context)
        self.log.info("Planning maintenance of %d tables (%s run, policy %s)",
                      len(policy.tables), trigger, self.policy_file)
        key = run_key(context["run_id"])
        todo = self.service.plan(policy, trigger, key)
        self._lineage = lambda: Lineage(
            inputs=[DatasetUse(iceberg_table(self.settings.catalog, t.identifier)) for t in policy.tables],
            outputs=[DatasetUse(storage_dataset(self.service.folder(key)), rows=len(todo))],
            run={"trigger": trigger, "tables": len(policy.tables), "due": len(todo)},
        )
        return todo


class IcebergMaintenanceOperator(FlowOperator):
    """Run one table's due actions in order in a single Spark application; return the report URI.

    One task per table (mapped over the plan's output) is what keeps two maintenance actions
    off the same table at once: compaction, expiry, manifests and orphans run one after another
    inside the job. The job follows the one flow of :mod:`warpspeed.compute.flow`: deferring
    while it runs on EMR, resubmitted once on on-demand nodes after a Spot loss (the table is
    not measured again).

    :param table: the table identifier (``namespace.table``).
    :param plan_uri: the table's plan document from :class:`PlanIcebergMaintenanceOperator`.
    :param cluster_profiles_file: cluster profiles YAML for the ``emr`` backend.
    """

    s3_component = "maintenance"

    template_fields = aws_template_fields("table", "plan_uri", "cluster_profiles_file")
    ui_color = "#aed6f1"

    def __init__(self, *, table: str, plan_uri: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.plan_uri = plan_uri

    @cached_property
    def service(self) -> IcebergMaintenanceService:
        """Build the maintenance service lazily."""
        return IcebergMaintenanceService(self.settings, self.storage, self.profiles_file)

    @cached_property
    def backend(self) -> ComputeBackend:
        """Return the service's compute backend."""
        return self.service.backend

    def execute(self, context: Context) -> str:
        """Start the plan; finish now (local) or after deferring while it runs (EMR)."""
        started_at = datetime.now(UTC)
        self.service.job_conf = self.lineage_conf(context)
        pending, job = self.service.start(self.plan_uri, context["run_id"])
        return self._run(pending, JobFlow.begin([job], started_at), [job])

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, pending: dict[str, Any] | None = None
    ) -> str:
        """Check the trigger's event, then retry a Spot loss once or finish (measure, report, record)."""
        checked, statuses = self.resume(event, pending, lambda: self.service.cluster_of(pending or {}),
                                        f"maintenance of {self.table}")
        self.service.job_conf = self.lineage_conf(context)  # a resubmit names this task as its job's parent
        return self._run(dict(checked), JobFlow.from_dict(checked["flow"]), statuses)

    def _run(self, pending: dict[str, Any], flow: JobFlow, statuses: Sequence[StepStatus]) -> str:
        """Take the job to its end (deferring while it runs), then measure, report and record."""
        self.run_flow(lambda: self.service.cluster_of(pending), flow, statuses,
                      resubmit=on_demand_restart(self.service, pending),
                      pending=lambda: {**pending, "flow": flow.to_dict()}, timeout=self.execution_timeout)
        (job,) = flow.finals()
        outcome = self.service.finish(pending, job)
        self._lineage = lambda: maintained_lineage(self.settings.catalog, self.table, self.plan_uri, outcome)
        return outcome.report_uri


def maintained_lineage(catalog: CatalogConfig, identifier: str, plan_uri: str, outcome: MaintenanceOutcome) -> Lineage:
    """Return what one table's maintenance read and wrote: the plan and the table in, the table and report out."""
    record, table = outcome.record, iceberg_table(catalog, identifier)
    return Lineage(
        inputs=[DatasetUse(storage_dataset(plan_uri)),
                DatasetUse(table, rows=record.before.records, files=record.before.data_files)],
        outputs=[DatasetUse(table, rows=record.after.records, files=record.after.data_files),
                 DatasetUse(storage_dataset(outcome.report_uri))],
        run={"table": identifier, "status": record.status, "actions": list(record.actions),
             "orphans_removed": record.orphans_removed},
    )
