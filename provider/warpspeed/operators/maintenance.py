"""Operators that plan and run Iceberg table maintenance (see :mod:`warpspeed.maintenance.service`)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import Context

from warpspeed.compute.base import ClusterRef, StepStatus, should_retry_on_demand
from warpspeed.config.maintenance_policy import MaintenancePolicy
from warpspeed.exceptions import ComputeError
from warpspeed.maintenance.plan import TriggerKind
from warpspeed.maintenance.service import IcebergMaintenanceService
from warpspeed.operators._base import WarpSpeedOperator
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

    template_fields = ("policy_file",)
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
        return self.service.plan(policy, trigger, run_key(context["run_id"]))


class IcebergMaintenanceOperator(WarpSpeedOperator):
    """Run one table's due actions in order in a single Spark application; return the report URI.

    One task per table (mapped over the plan's output) is what keeps two maintenance actions
    off the same table at once: compaction, expiry, manifests and orphans run one after another
    inside the job.

    :param table: the table identifier (``namespace.table``).
    :param plan_uri: the table's plan document from :class:`PlanIcebergMaintenanceOperator`.
    """

    template_fields = ("table", "plan_uri", "cluster_profiles_file")
    ui_color = "#aed6f1"

    def __init__(
        self,
        *,
        table: str,
        plan_uri: str,
        cluster_profiles_file: str | None = None,
        poll_interval: float = 30.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.plan_uri = plan_uri
        self.cluster_profiles_file = cluster_profiles_file
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self._started: tuple[ClusterRef, str] | None = None

    @cached_property
    def service(self) -> IcebergMaintenanceService:
        """Build the maintenance service lazily."""
        return IcebergMaintenanceService(self.settings, self.storage, self.cluster_profiles_file)

    def execute(self, context: Context) -> str:
        """Start the plan; finish now (local) or after deferring while it runs (EMR)."""
        pending, job = self.service.start(self.plan_uri, context["run_id"])
        return self._advance(pending, job)

    def _advance(self, pending: dict[str, Any], job: StepStatus) -> str:
        cluster = self.service.cluster_of(pending)
        if should_retry_on_demand(job, pending["retried"]):
            self.log.warning("Maintenance job %s lost to Spot; retrying once on on-demand nodes", job.step_id)
            pending, job = self.service.start(
                self.plan_uri, pending["run_id"], on_demand_only=True, before=pending["before"]
            )
        self._started = (cluster, job.step_id)
        if not job.terminal:
            if self.deferrable:
                self.defer(
                    trigger=self.service.backend.wait_trigger(cluster, [job.step_id], poll_interval=self.poll_interval),
                    method_name="execute_complete",
                    kwargs={"pending": pending},
                    timeout=self.execution_timeout,
                )
            (job,) = self.service.backend.wait(cluster, [job.step_id])
            return self._advance(pending, job)
        self._started = None
        return self.service.finish(pending, job).report_uri

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, pending: dict[str, Any] | None = None
    ) -> str:
        """Check the trigger's event, then retry a Spot loss once or finish (measure, report, record)."""
        if not pending:
            raise ComputeError("execute_complete called without the started maintenance job")
        if not event or event.get("status") != "done" or event.get("cluster_id") != pending["cluster_id"]:
            message = (event or {}).get("message", event)
            raise ComputeError(f"waiting for maintenance of {self.table} failed: {message}")
        steps = [StepStatus.from_dict(s) for s in event.get("steps", [])]
        if len(steps) != 1:
            raise ComputeError(f"trigger event lacks the maintenance step of {self.table}: {event}")
        return self._advance(pending, steps[0])

    def on_kill(self) -> None:
        """Cancel the maintenance job this task started."""
        if self._started:
            cluster, job_id = self._started
            self.service.backend.cancel(cluster, [job_id])
