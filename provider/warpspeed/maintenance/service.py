"""Plan and run Iceberg table maintenance: pyiceberg reads metadata, Spark procedures do the work.

The hook reads each registered table's metadata and its maintenance history, asks the pure
planner (:mod:`warpspeed.maintenance.plan`) what is due, writes one plan document per table,
runs ``maintenance/iceberg_maintenance.py`` on the compute backend (local ``spark-submit`` in the
embedded stack, an EMR step on the ``maintenance`` profile in production), then measures the
table again and records the before/after figures in ``warpspeed.maintenance_runs``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from airflow.utils.log.logging_mixin import LoggingMixin

from warpspeed.compute.base import ClusterRef, ComputeBackend, SparkJob
from warpspeed.compute.factory import compute_backend_for
from warpspeed.compute.flow import JobFlow, StepStatus, drive, outcome_of
from warpspeed.config.maintenance_policy import MaintenancePolicy
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.exceptions import ComputeError
from warpspeed.ledger.tables import MAINTENANCE_RUNS_TABLE, ensure_maintenance_runs_table
from warpspeed.maintenance.plan import (
    MaintenanceHistory,
    TablePlan,
    TriggerKind,
    plan_table,
    read_table_state,
)
from warpspeed.maintenance.report import MaintenanceRunRecord, TableStats, format_report, table_stats
from warpspeed.maintenance.s3_tables import SKIP_REASON, maintenance_requests
from warpspeed.storage.documents import Storage, join_uri, run_key

MAINTENANCE_SCRIPT = "iceberg_maintenance.py"
MAINTENANCE_WORKLOAD = "maintenance"
MAINTENANCE_PROFILE = "maintenance"


def _literal(value: str) -> str:
    """Return a pyiceberg filter string literal (run ids and table identifiers never hold quotes)."""
    if "'" in value or "\\" in value:
        raise ValueError(f"unexpected quote in {value!r}")
    return f"'{value}'"


@dataclass(frozen=True)
class MaintenanceOutcome:
    """What one table's maintenance did (also one ``maintenance_runs`` row)."""

    record: MaintenanceRunRecord
    report_uri: str


def _stats_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return the :class:`TableStats` fields of its ``as_dict()`` form."""
    return {f.name: raw[f.name] for f in fields(TableStats)}


class IcebergMaintenanceService(LoggingMixin):
    """Plan, run and record Iceberg maintenance for the registered tables.

    :param settings: Warp Speed settings (catalog, storage prefix, compute backend).
    :param profiles_file: cluster profiles YAML for the ``emr`` backend (the bundle's config).
    """

    def __init__(
        self, settings: WarpSpeedSettings, storage: Storage | None = None, profiles_file: str | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self._storage = storage
        self.profiles_file = profiles_file
        self.job_conf: dict[str, str] = {}
        """Spark conf of the jobs it starts (the task's OpenLineage parent, set by the operator)."""

    @cached_property
    def catalog(self) -> Any:
        """Open the catalog lazily."""
        return self.settings.catalog.load()

    @cached_property
    def storage(self) -> Storage:
        """Return the storage of plans, results and reports."""
        return self._storage or self.settings.storage()

    @cached_property
    def backend(self) -> ComputeBackend:
        """Build the configured compute backend lazily."""
        return compute_backend_for(self.settings, self.profiles_file)

    def folder(self, key: str) -> str:
        """Return the storage folder of one maintenance run."""
        return join_uri(self.settings.storage_prefix, "maintenance", "runs", key)

    def history(self, identifier: str) -> MaintenanceHistory:
        """Return when the table was last maintained (successful runs only)."""
        if not self.catalog.table_exists(MAINTENANCE_RUNS_TABLE):
            return MaintenanceHistory()
        rows = (
            self.catalog.load_table(MAINTENANCE_RUNS_TABLE)
            .scan(row_filter=f"table_name == {_literal(identifier)} AND status == 'succeeded'",
                  selected_fields=("finished_at", "actions"))
            .to_arrow()
            .to_pylist()
        )
        finished = [r["finished_at"] for r in rows if r["finished_at"] is not None]
        orphans = [r["finished_at"] for r in rows
                   if r["finished_at"] is not None and "remove_orphan_files" in (r["actions"] or [])]
        return MaintenanceHistory(
            last_run_at=max(finished, default=None), last_orphans_at=max(orphans, default=None)
        )

    def plan(
        self, policy: MaintenancePolicy, trigger: TriggerKind, key: str, now: datetime | None = None
    ) -> list[dict[str, str]]:
        """Plan every registered table; write the plans; return ``{table, plan_uri}`` of those with work.

        On an S3 Tables catalog nothing is due: every table's plan is written with
        :data:`~warpspeed.maintenance.s3_tables.SKIP_REASON` and no table is loaded.
        """
        now = now or datetime.now(UTC)
        if self.settings.catalog.is_s3_tables():
            return self._skip_s3_tables(policy, trigger, key, now)
        partial_progress = self.settings.catalog.kind != "sql"
        todo = []
        for table_policy in policy.tables:
            identifier = table_policy.identifier
            if not self.catalog.table_exists(identifier):
                self.log.warning("%s is registered for maintenance but does not exist; skipping", identifier)
                continue
            table = self.catalog.load_table(identifier)
            state = read_table_state(table, identifier)
            plan = plan_table(table_policy, state, self.history(identifier), now,
                              trigger=trigger, partial_progress=partial_progress)
            self.log.info("%s", plan.describe())
            uri = join_uri(self.folder(key), f"{identifier}.plan.json")
            self.storage.write_text(uri, plan.to_json())
            if plan.due:
                todo.append({"table": identifier, "plan_uri": uri})
        self.log.info("%d of %d registered tables have maintenance due", len(todo), len(policy.tables))
        return todo

    def _skip_s3_tables(
        self, policy: MaintenancePolicy, trigger: TriggerKind, key: str, now: datetime
    ) -> list[dict[str, str]]:
        """Write a skipped plan per table, log why and the equivalent S3 Tables settings; return no work."""
        bucket = self.settings.catalog.s3_table_bucket_arn() or "<table bucket ARN>"
        for table_policy in policy.tables:
            plan = TablePlan(table_policy.identifier, now, trigger, (), skipped_reason=SKIP_REASON)
            self.storage.write_text(join_uri(self.folder(key), f"{plan.identifier}.plan.json"), plan.to_json())
            self.log.warning("%s: skipped. %s. Equivalent settings: %s", plan.identifier, SKIP_REASON,
                             json.dumps(maintenance_requests(table_policy, bucket)))
        self.log.info("0 of %d registered tables have maintenance due (S3 Tables catalog)", len(policy.tables))
        return []

    def stats(self, identifier: str) -> TableStats:
        """Measure a freshly loaded table."""
        return table_stats(self.catalog.load_table(identifier))

    def start(self, plan_uri: str, run_id: str, *, on_demand_only: bool = False,
              before: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], StepStatus]:
        """Measure the table and start its plan as one Spark application.

        Return the JSON-safe state :meth:`finish` needs and the job's status: final on the local
        backend, running on EMR (the operator then defers on the backend's trigger).
        """
        plan = TablePlan.from_json(self.storage.read_text(plan_uri))
        cluster = self.backend.ensure_cluster(MAINTENANCE_WORKLOAD, MAINTENANCE_PROFILE)
        before = dict(before) if before else self.stats(plan.identifier).as_dict()
        self.log.info("Running %s on %s: %s", plan.identifier, cluster.cluster_id,
                      ", ".join(a.action for a in plan.due))
        (status,) = self.backend.start(cluster, [self.job(plan_uri, plan.identifier, run_id)],
                                      on_demand_only=on_demand_only)
        pending = {"plan_uri": plan_uri, "run_id": run_id, "workload": cluster.workload,
                   "cluster_id": cluster.cluster_id, "backend": cluster.backend,
                   "started_at": datetime.now(UTC).isoformat(), "before": before}
        return pending, status

    def job(self, plan_uri: str, identifier: str, run_id: str) -> SparkJob:
        """Return the Spark job of one table's plan (named by table and run: a retry finds it)."""
        return SparkJob(
            name=f"warpspeed-maintenance-{run_key(identifier)}-{run_key(run_id)[-40:]}",
            script=MAINTENANCE_SCRIPT,
            args=("--plan", plan_uri, "--result", self.result_uri(plan_uri), "--catalog", self.settings.catalog.name),
            conf=dict(self.job_conf),
        )

    @staticmethod
    def result_uri(plan_uri: str) -> str:
        """Return where the job writes its result document."""
        return plan_uri.removesuffix(".plan.json") + ".result.json"

    def cluster_of(self, pending: Mapping[str, Any]) -> ClusterRef:
        """Return the cluster a started plan runs on."""
        return ClusterRef(pending["workload"], pending["cluster_id"], pending["backend"])

    def run(self, plan_uri: str, run_id: str) -> MaintenanceOutcome:
        """Run one table's plan to the end (blocking, the flow without deferring): start, wait, finish."""
        started_at = datetime.now(UTC)
        pending, status = self.start(plan_uri, run_id)
        flow = drive(JobFlow.begin([status], started_at), [status], resubmit=on_demand_restart(self, pending),
                     wait=lambda step_ids: self.backend.wait(self.cluster_of(pending), step_ids))
        (job,) = flow.finals()
        return self.finish(pending, job)

    def finish(self, pending: Mapping[str, Any], job: StepStatus) -> MaintenanceOutcome:
        """Measure the table again, write the report, record the row; raise if an action failed."""
        plan_uri, run_id = pending["plan_uri"], pending["run_id"]
        plan = TablePlan.from_json(self.storage.read_text(plan_uri))
        identifier = plan.identifier
        result_uri = self.result_uri(plan_uri)
        report_uri = plan_uri.removesuffix(".plan.json") + ".report.json"
        cluster = self.cluster_of(pending)
        started = datetime.fromisoformat(pending["started_at"])
        before = TableStats(**_stats_fields(pending["before"]))
        outcome = outcome_of(job, (datetime.now(UTC) - started).total_seconds())
        result: dict[str, Any] = (
            json.loads(self.storage.read_text(result_uri)) if self.storage.exists(result_uri) else {}
        )
        after = self.stats(identifier)
        actions = result.get("actions", [])
        done = [a["action"] for a in actions if a.get("status") == "succeeded"]
        status = "succeeded" if outcome.succeeded and result.get("status") == "succeeded" else "failed"
        table = self.catalog.load_table(identifier)
        current = table.current_snapshot()
        record = MaintenanceRunRecord(
            run_id=run_id,
            table_name=identifier,
            trigger=plan.trigger,
            status=status,
            actions=done,
            reasons=json.dumps({a.action: a.reason for a in plan.due}, sort_keys=True),
            backend=cluster.backend,
            cluster_id=cluster.cluster_id,
            started_at=started,
            finished_at=datetime.now(UTC),
            spark_seconds=round(outcome.seconds, 3),
            before=before,
            after=after,
            orphans_removed=sum(int(a.get("orphans_removed", 0)) for a in actions),
            snapshot_id_after=current.snapshot_id if current else None,
            result=json.dumps(actions, sort_keys=True, default=str)[:60_000],
            recorded_at=datetime.now(UTC),
        )
        self.log.info("%s", format_report(identifier, before, after))
        for action in actions:
            self.log.info("  %s: %s", action["action"], json.dumps(
                {k: v for k, v in action.items() if k not in ("action", "sql", "orphan_files")}, default=str))
        report = {
            "schema": "warpspeed.maintenance.report/v1", "table": identifier, "run_id": run_id,
            "status": status, "before": before.as_dict(), "after": after.as_dict(),
            "plan_uri": plan_uri, "result_uri": result_uri, "log_uri": outcome.log_uri,
            "actions": actions,
        }
        self.storage.write_text(report_uri, json.dumps(report, indent=1, sort_keys=True, default=str))
        self.record([record])
        if status != "succeeded":
            failed = next((a for a in actions if a.get("status") == "failed"), None)
            raise ComputeError(
                f"maintenance of {identifier} failed: "
                f"{failed['action'] + ': ' + failed['error'][:500] if failed else outcome.reason} "
                f"(log {outcome.log_uri}, report {report_uri})"
            )
        return MaintenanceOutcome(record, report_uri)

    def record(self, records: Sequence[MaintenanceRunRecord]) -> int:
        """Upsert rows by (run id, table) so a retried task rewrites its row instead of doubling it."""
        if not records:
            return 0
        import pyarrow as pa
        if len({r.run_id for r in records}) != 1:
            raise ValueError("record() takes the rows of one maintenance run at a time")
        ensure_maintenance_runs_table(self.catalog)
        table = self.catalog.load_table(MAINTENANCE_RUNS_TABLE)
        data = pa.Table.from_pylist([r.row() for r in records], schema=table.schema().as_arrow())
        tables = ", ".join(_literal(r.table_name) for r in records)
        condition = f"run_id == {_literal(records[0].run_id)} AND table_name IN ({tables})"
        table.overwrite(data, overwrite_filter=condition)
        self.log.info("Recorded %d rows in %s", len(records), MAINTENANCE_RUNS_TABLE)
        return len(records)


def on_demand_restart(
    service: IcebergMaintenanceService, pending: dict[str, Any]
) -> Callable[[list[int]], list[StepStatus]]:
    """Return the flow's resubmit for one table's job: start its plan again on on-demand nodes.

    The table is not measured again (the first measurement stays the "before"); ``pending`` is
    updated in place, so what the task defers with and finishes from names the new job.
    """

    def resubmit(lost: list[int]) -> list[StepStatus]:
        fresh, status = service.start(pending["plan_uri"], pending["run_id"], on_demand_only=True,
                                      before=pending["before"])
        pending.update(fresh)
        return [status]

    return resubmit
