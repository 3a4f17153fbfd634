"""Operators that plan and run Iceberg table maintenance (see :mod:`warpspeed.services.maintenance`)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import Context

from warpspeed.maintenance_policy import MaintenancePolicy
from warpspeed.operators._base import WarpSpeedOperator
from warpspeed.planning.maintenance import TriggerKind
from warpspeed.services.maintenance import IcebergMaintenanceHook
from warpspeed.storage import run_key

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
    def hook(self) -> IcebergMaintenanceHook:
        """Build the maintenance hook lazily."""
        return IcebergMaintenanceHook(self.settings, self.storage)

    def execute(self, context: Context) -> list[dict[str, str]]:
        """Plan every table and write the plan documents."""
        policy = MaintenancePolicy.load(self.policy_file)
        trigger = trigger_of(context)
        self.log.info("Planning maintenance of %d tables (%s run, policy %s)",
                      len(policy.tables), trigger, self.policy_file)
        return self.hook.plan(policy, trigger, run_key(context["run_id"]))


class IcebergMaintenanceOperator(WarpSpeedOperator):
    """Run one table's due actions in order in a single Spark application; return the report URI.

    One task per table (mapped over the plan's output) is what keeps two maintenance actions
    off the same table at once: compaction, expiry, manifests and orphans run one after another
    inside the job.

    :param table: the table identifier (``namespace.table``).
    :param plan_uri: the table's plan document from :class:`PlanIcebergMaintenanceOperator`.
    """

    template_fields = ("table", "plan_uri")
    ui_color = "#aed6f1"

    def __init__(self, *, table: str, plan_uri: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.plan_uri = plan_uri

    @cached_property
    def hook(self) -> IcebergMaintenanceHook:
        """Build the maintenance hook lazily."""
        return IcebergMaintenanceHook(self.settings, self.storage)

    def execute(self, context: Context) -> str:
        """Run the plan; fail the task if an action failed (the row is recorded either way)."""
        outcome = self.hook.run(self.plan_uri, context["run_id"])
        return outcome.report_uri
