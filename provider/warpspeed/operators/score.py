"""Operator of the window's score step: run every batch of one workload on its cluster."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Context

from warpspeed.compute.base import ClusterRef, SparkJob, StepStatus
from warpspeed.compute.flow import JobFlow, failure_message
from warpspeed.exceptions import ComputeError
from warpspeed.lineage.datasets import DatasetUse, Lineage, iceberg_table, rows_by_tenant, storage_dataset
from warpspeed.links.emr import (
    EmrPoolClusterLink,
    EmrPoolSparkHistoryLink,
    EmrPoolStepLogsLink,
    step_logs_prefix,
)
from warpspeed.operators._base import aws_template_fields
from warpspeed.operators._compute import FlowOperator
from warpspeed.window.manifests import BatchManifest, BatchRun, WindowLayout

SCORE_SCRIPT = "score_batch.py"
ARROW_SCRIPT = "score_arrow.py"
"""The single-node engine's entry point (small batches, see :mod:`warpspeed.planning.routing`)."""
DEFER_TIMEOUT = timedelta(hours=12)


def score_job(
    manifest_uri: str, batch_id: str, catalog_name: str, engine: str = "spark", conf: Mapping[str, str] | None = None
) -> SparkJob:
    """Return the job that scores one batch on its engine; its name (the batch id) finds it again on retry.

    :param conf: Spark conf of the job (the task's OpenLineage parent, :meth:`ComputeOperator.lineage_conf`).
    """
    return SparkJob(
        name=f"warpspeed-{batch_id}",
        script=ARROW_SCRIPT if engine == "arrow" else SCORE_SCRIPT,
        args=("--batch-manifest", manifest_uri, "--catalog", catalog_name),
        conf=dict(conf or {}) if engine != "arrow" else {},
        engine=engine,
    )


@dataclass(frozen=True)
class ScoreBatch:
    """One batch the task runs: where its manifest and run record are, and what the task needs of the manifest.

    The task reads each manifest once per try (in ``execute``) and carries these fields across
    deferrals, so a resubmit after Spot loss and the run records need no second read.
    """

    manifest_uri: str
    run_uri: str
    batch_id: str
    window_id: str
    workload: str
    engine: str
    summary_uri: str
    features_table: str = ""
    scores_table: str = ""

    @classmethod
    def of(cls, manifest_uri: str, run_uri: str, manifest: BatchManifest) -> ScoreBatch:
        """Keep what the task needs of ``manifest``."""
        return cls(manifest_uri, run_uri, manifest.batch_id, manifest.window_id, manifest.workload,
                   manifest.engine, manifest.summary_uri, manifest.features_table, manifest.scores_table)


@dataclass
class ScoreState:
    """What the score task carries across a deferral (``pending``): its batches and their flow.

    :param run_uris: every batch's run record, finished in an earlier try or not (the task's result).
    :param batches: the batches this try runs, in the order of ``flow.jobs``.
    """

    cluster_created: bool
    run_uris: list[str]
    batches: list[ScoreBatch]
    flow: JobFlow

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (``defer(kwargs={"pending": ...})``)."""
        return {"cluster_created": self.cluster_created, "run_uris": list(self.run_uris),
                "batches": [asdict(b) for b in self.batches], "flow": self.flow.to_dict()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ScoreState:
        """Rebuild from :meth:`to_dict`."""
        return cls(bool(raw["cluster_created"]), [str(u) for u in raw["run_uris"]],
                   [ScoreBatch(**b) for b in raw["batches"]], JobFlow.from_dict(raw["flow"]))


class ScoreBatchesOperator(FlowOperator):
    """Run every batch of one workload on its cluster; return the batch run record URIs.

    A retry skips batches an earlier attempt finished (their run record says SUCCEEDED) and
    reruns the rest; a rerun of a batch overwrites exactly its slices, so it is idempotent.

    The jobs follow the one flow of :mod:`warpspeed.compute.flow` (:class:`FlowOperator`): the
    local backend runs them to completion in ``start``; EMR submits them as steps in as few
    AddJobFlowSteps calls as possible, adopting same-named steps still running from an earlier
    attempt, and the task defers while they run; a job lost to Spot reclamation is resubmitted
    once on on-demand nodes. ``on_kill`` cancels the jobs the task started.

    :param workload: the workload whose batches these are.
    :param batch_manifest_uris: the batches' manifests.
    :param clusters: ``{workload: cluster_id}`` from
        :class:`~warpspeed.operators.clusters.EnsureClustersOperator`.
    :param workloads_file: workloads YAML; the ``cluster_profiles.yaml`` beside it is the default
        ``cluster_profiles_file`` (as for the ensure-clusters task, so both read the same profiles).
    :param cluster_profiles_file: cluster profiles YAML for the ``emr`` backend.
    :param poll_interval: seconds before the first step poll (the interval then grows).
    :param deferrable: wait for steps in the triggerer instead of a worker slot.
    """

    s3_component = "score"

    template_fields = aws_template_fields("workload", "batch_manifest_uris", "clusters", "workloads_file",
                                          "cluster_profiles_file")
    ui_color = "#fadbd8"
    operator_extra_links = (EmrPoolClusterLink(), EmrPoolStepLogsLink(), EmrPoolSparkHistoryLink())

    def __init__(
        self, *, workload: str, batch_manifest_uris: Sequence[str], clusters: Mapping[str, str], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.workload = workload
        self.batch_manifest_uris = batch_manifest_uris
        self.clusters = clusters
        self._spark_lineage: dict[str, str] = {}
        """The OpenLineage parent conf of the jobs this try starts (set from the task's context)."""
        self._recorded: list[tuple[ScoreBatch, bool]] = []
        """The batches this try recorded, and whether each succeeded (its lineage)."""

    def _finished_earlier(self, run_uri: str) -> bool:
        if not self.storage.exists(run_uri):
            return False
        return BatchRun.from_json(self.storage.read_text(run_uri)).state == "SUCCEEDED"

    def _cluster(self, created: bool = False) -> ClusterRef:
        return ClusterRef(self.workload, self.clusters[self.workload], self.backend.name, created)

    def _job(self, uri: str, batch: BatchManifest | ScoreBatch) -> SparkJob:
        return score_job(uri, batch.batch_id, self.settings.catalog.name, batch.engine, self._spark_lineage)

    def _persist_links(self, context: Context, cluster: ClusterRef) -> None:
        links = self.backend.links(cluster)
        if links is None:
            return
        common = {
            "context": context,
            "operator": self,
            "region_name": links["region_name"],
            "aws_partition": "aws",
            "cluster_id": cluster.cluster_id,
        }
        EmrPoolClusterLink.persist(**common)
        EmrPoolStepLogsLink.persist(**common, log_prefix=step_logs_prefix(links["log_uri"], cluster.cluster_id))
        EmrPoolSparkHistoryLink.persist(**common)

    def execute(self, context: Context) -> list[str]:
        """Start the batches not finished earlier; complete now (local) or after deferring (EMR)."""
        self._spark_lineage = self.lineage_conf(context)
        cluster = self._cluster()
        layout = self.window(context).layout(self.settings.storage_prefix)
        manifests = [BatchManifest.from_json(self.storage.read_text(u)) for u in self.batch_manifest_uris]
        batches = [ScoreBatch.of(uri, layout.run_uri(m.batch_id), m)
                   for uri, m in zip(self.batch_manifest_uris, manifests, strict=True)]
        todo = [(b, m) for b, m in zip(batches, manifests, strict=True) if not self._finished_earlier(b.run_uri)]
        if len(todo) < len(batches):
            self.log.info("%d of %d batches finished in an earlier attempt; skipping them",
                          len(batches) - len(todo), len(batches))
        run_uris = [b.run_uri for b in batches]
        if not todo:
            return run_uris
        self._persist_links(context, cluster)
        for index, (_, manifest) in enumerate(todo, start=1):
            self.log.info("Batch %d/%d %s: %d tenants, ~%d rows, %s engine", index, len(todo), manifest.batch_id,
                          len(manifest.tenants), manifest.estimated_rows, manifest.engine)
        started_at = datetime.now(UTC)
        statuses = self.backend.start(cluster, [self._job(b.manifest_uri, m) for b, m in todo])
        state = ScoreState(cluster.created, run_uris, [b for b, _ in todo], JobFlow.begin(statuses, started_at))
        return self._run(state, statuses)

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, pending: dict[str, Any] | None = None
    ) -> list[str]:
        """Check the trigger's event, then resubmit, defer again or record as :meth:`execute` does."""
        checked, statuses = self.resume(event, pending, self._cluster, f"steps on {self.clusters[self.workload]}")
        state = ScoreState.from_dict(checked)
        self._spark_lineage = self.lineage_conf(context)  # a resubmit names this task as its jobs' parent
        self._persist_links(context, self._cluster(state.cluster_created))  # a resumed try is a new process
        return self._run(state, statuses)

    def _run(self, state: ScoreState, statuses: Sequence[StepStatus]) -> list[str]:
        """Take the batches' jobs to their end (deferring while they run), then record every batch."""
        cluster = self._cluster(state.cluster_created)

        def resubmit(lost: list[int]) -> list[StepStatus]:
            jobs = [self._job(state.batches[i].manifest_uri, state.batches[i]) for i in lost]
            return self.backend.start(cluster, jobs, on_demand_only=True)

        self.run_flow(lambda: cluster, state.flow, statuses, resubmit=resubmit, pending=state.to_dict,
                      timeout=DEFER_TIMEOUT)
        state.flow.restate(self.backend.explain(cluster, state.flow.finals()))  # a failed cluster's reason
        return self._record(cluster, state)

    def _record(self, cluster: ClusterRef, state: ScoreState) -> list[str]:
        """Write every batch's run record; raise one failure message for the batches that failed."""
        failed = []
        for batch, outcome in zip(state.batches, state.flow.outcomes(), strict=True):
            run = BatchRun(
                batch_id=batch.batch_id,
                window_id=batch.window_id,
                workload=batch.workload,
                batch_manifest_uri=batch.manifest_uri,
                summary_uri=batch.summary_uri,
                backend=cluster.backend,
                cluster_id=cluster.cluster_id,
                cluster_created=cluster.created,
                state=outcome.state,
                started_at=state.flow.started_at.isoformat(),
                finished_at=datetime.now(UTC).isoformat(),
                run_seconds=round(outcome.seconds, 3),
                log_uri=outcome.log_uri,
                reason=outcome.reason,
            )
            self.storage.write_text(batch.run_uri, run.to_json())
            if not outcome.succeeded:
                failed.append(f"{batch.batch_id}: {outcome.reason} (log {outcome.log_uri})")
        self._recorded = [(b, o.succeeded) for b, o in zip(state.batches, state.flow.outcomes(), strict=True)]
        if failed:
            raise ComputeError(failure_message(failed, len(state.batches)))
        return list(state.run_uris)

    def lineage(self) -> Lineage | None:
        """Return what this try's batches read and wrote: manifests and features in, scores and run records out.

        Each scores table carries the rows written per tenant, from the summaries of the batches
        that succeeded (read only here, so only when OpenLineage asks).
        """
        recorded = self._recorded
        if not recorded:
            return None
        catalog = self.settings.catalog
        summaries: dict[str, list[dict[str, Any]]] = {}
        for batch, succeeded in recorded:
            if succeeded and batch.scores_table and self.storage.exists(batch.summary_uri):
                summary = json.loads(self.storage.read_text(batch.summary_uri))
                summaries.setdefault(batch.scores_table, []).append(summary)
        layout = WindowLayout(self.settings.storage_prefix, recorded[0][0].window_id)
        features = sorted({b.features_table for b, _ in recorded if b.features_table})
        outputs = []
        for table, docs in sorted(summaries.items()):
            tenants = rows_by_tenant(docs)
            outputs.append(DatasetUse(iceberg_table(catalog, table), rows=sum(tenants.values()),
                                      rows_by_tenant=tenants))
        return Lineage(
            inputs=[DatasetUse(storage_dataset(layout.batches_folder), rows=len(recorded)),
                    *(DatasetUse(iceberg_table(catalog, t)) for t in features)],
            outputs=[*outputs, DatasetUse(storage_dataset(layout.runs_folder), rows=len(recorded))],
            run={"window_id": layout.window_id, "workload": self.workload, "batches": len(recorded),
                 "succeeded": sum(1 for _, ok in recorded if ok)},
        )
