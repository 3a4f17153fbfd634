"""Operators that make sure clusters exist and run scoring batches on them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from airflow.sdk import Context, XComArg

from warpspeed.compute.base import (
    ClusterRef,
    ComputeBackend,
    JobOutcome,
    SparkJob,
    StepStatus,
    failure_message,
    outcome_of,
    should_retry_on_demand,
)
from warpspeed.compute.factory import compute_backend_for
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.exceptions import ComputeError
from warpspeed.links.emr import (
    EmrPoolClusterLink,
    EmrPoolSparkHistoryLink,
    EmrPoolStepLogsLink,
    step_logs_prefix,
)
from warpspeed.operators._base import WarpSpeedOperator
from warpspeed.window.manifests import BatchManifest, BatchRun

SCORE_SCRIPT = "score_batch.py"
ARROW_SCRIPT = "score_arrow.py"
"""The single-node engine's entry point (small batches, see :mod:`warpspeed.planning.routing`)."""
PROFILES_FILE_NAME = "cluster_profiles.yaml"


def score_job(manifest_uri: str, batch_id: str, catalog_name: str, engine: str = "spark") -> SparkJob:
    """Return the job that scores one batch on its engine; its name (the batch id) finds it again on retry."""
    return SparkJob(
        name=f"warpspeed-{batch_id}",
        script=ARROW_SCRIPT if engine == "arrow" else SCORE_SCRIPT,
        args=("--batch-manifest", manifest_uri, "--catalog", catalog_name),
        engine=engine,
    )


def _profiles_file(workloads_file: str | None, cluster_profiles_file: str | None) -> str | None:
    if cluster_profiles_file:
        return cluster_profiles_file
    return str(Path(workloads_file).with_name(PROFILES_FILE_NAME)) if workloads_file else None


class EnsureClustersOperator(WarpSpeedOperator):
    """Reuse or create one cluster per workload that has work; return ``{workload: cluster_id}``.

    :param workload_batches: the plan task's output.
    :param workloads_file: workloads YAML (maps a workload to its cluster profile).
    :param cluster_profiles_file: cluster profiles YAML for the ``emr`` backend; default:
        ``cluster_profiles.yaml`` beside ``workloads_file``.
    """

    template_fields = ("workload_batches", "workloads_file", "cluster_profiles_file")
    ui_color = "#f9e79f"

    def __init__(
        self,
        *,
        workload_batches: Sequence[Mapping[str, Any]] | XComArg,
        workloads_file: str,
        cluster_profiles_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workload_batches = workload_batches
        self.workloads_file = workloads_file
        self.cluster_profiles_file = cluster_profiles_file

    @cached_property
    def backend(self) -> ComputeBackend:
        """Build the configured compute backend lazily."""
        return compute_backend_for(
            self.settings, _profiles_file(self.workloads_file, self.cluster_profiles_file)
        )

    def execute(self, context: Context) -> dict[str, str]:
        """Ensure a cluster for every workload in the plan, one ListClusters for all of them.

        A cluster created now starts with the workload's scoring jobs already on it;
        :class:`ScoreBatchesOperator` finds them by name instead of submitting them again.
        """
        catalog = WorkloadCatalog.load(self.workloads_file)
        batches = cast("Sequence[Mapping[str, Any]]", self.workload_batches)  # resolved by now
        needs = {
            item["workload"]: (
                catalog[item["workload"]].profile,
                [self._job(uri) for uri in item.get("batch_manifest_uris") or ()],
            )
            for item in batches or []
        }
        clusters = {}
        for workload, ref in self.backend.ensure_clusters(needs).items():
            self.log.info(
                "Workload %s: %s cluster %s on %s",
                workload,
                "created" if ref.created else "reusing",
                ref.cluster_id,
                ref.backend,
            )
            clusters[workload] = ref.cluster_id
        return clusters

    def _job(self, uri: str) -> SparkJob:
        manifest = BatchManifest.from_json(self.storage.read_text(uri))
        return score_job(uri, manifest.batch_id, self.settings.catalog.name, manifest.engine)


class ScoreBatchesOperator(WarpSpeedOperator):
    """Run every batch of one workload on its cluster; return the batch run record URIs.

    A retry skips batches an earlier attempt finished (their run record says SUCCEEDED) and
    reruns the rest; a rerun of a batch overwrites exactly its slices, so it is idempotent.

    One flow for every backend: start the jobs (the local backend runs them to completion; EMR
    submits them as steps in as few AddJobFlowSteps calls as possible, adopting same-named steps
    still running from an earlier attempt), then, while any runs, defer on the backend's trigger
    (or wait blocking when not ``deferrable``); a job lost to Spot reclamation is resubmitted
    once pinned to on-demand nodes (:func:`~warpspeed.compute.base.should_retry_on_demand`).
    ``on_kill`` cancels the jobs the task started.

    :param workload: the workload whose batches these are.
    :param batch_manifest_uris: the batches' manifests.
    :param clusters: ``{workload: cluster_id}`` from :class:`EnsureClustersOperator`.
    :param cluster_profiles_file: cluster profiles YAML for the ``emr`` backend.
    :param poll_interval: seconds before the first step poll (the interval then grows).
    :param deferrable: wait for steps in the triggerer instead of a worker slot.
    """

    template_fields = ("workload", "batch_manifest_uris", "clusters", "cluster_profiles_file")
    ui_color = "#fadbd8"
    operator_extra_links = (EmrPoolClusterLink(), EmrPoolStepLogsLink(), EmrPoolSparkHistoryLink())

    def __init__(
        self,
        *,
        workload: str,
        batch_manifest_uris: Sequence[str],
        clusters: Mapping[str, str],
        cluster_profiles_file: str | None = None,
        poll_interval: float = 30.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workload = workload
        self.batch_manifest_uris = batch_manifest_uris
        self.clusters = clusters
        self.cluster_profiles_file = cluster_profiles_file
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self._started: tuple[ClusterRef, list[str]] | None = None

    @cached_property
    def backend(self) -> ComputeBackend:
        """Build the configured compute backend lazily."""
        return compute_backend_for(self.settings, self.cluster_profiles_file)

    def _finished_earlier(self, run_uri: str) -> bool:
        if not self.storage.exists(run_uri):
            return False
        return BatchRun.from_json(self.storage.read_text(run_uri)).state == "SUCCEEDED"

    def _cluster(self) -> ClusterRef:
        return ClusterRef(self.workload, self.clusters[self.workload], self.backend.name)

    def _job(self, uri: str, manifest: BatchManifest) -> SparkJob:
        return score_job(uri, manifest.batch_id, self.settings.catalog.name, manifest.engine)

    def _record(
        self,
        *,
        cluster: ClusterRef,
        uri: str,
        manifest: BatchManifest,
        run_uri: str,
        outcome: JobOutcome,
        started: datetime,
    ) -> str | None:
        """Write the batch's run record; return a failure line if it failed."""
        run = BatchRun(
            batch_id=manifest.batch_id,
            window_id=manifest.window_id,
            workload=manifest.workload,
            batch_manifest_uri=uri,
            summary_uri=manifest.summary_uri,
            backend=cluster.backend,
            cluster_id=cluster.cluster_id,
            cluster_created=cluster.created,
            state=outcome.state,
            started_at=started.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            run_seconds=round(outcome.seconds, 3),
            log_uri=outcome.log_uri,
            reason=outcome.reason,
        )
        self.storage.write_text(run_uri, run.to_json())
        return None if outcome.succeeded else f"{manifest.batch_id}: {outcome.reason} (log {outcome.log_uri})"

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
        cluster = self._cluster()
        layout = self.window(context).layout(self.settings.storage_prefix)
        manifests = [BatchManifest.from_json(self.storage.read_text(u)) for u in self.batch_manifest_uris]
        run_uris = [layout.run_uri(m.batch_id) for m in manifests]
        todo = [
            (uri, m, run_uri)
            for uri, m, run_uri in zip(self.batch_manifest_uris, manifests, run_uris, strict=True)
            if not self._finished_earlier(run_uri)
        ]
        if len(todo) < len(manifests):
            self.log.info(
                "%d of %d batches finished in an earlier attempt; skipping them",
                len(manifests) - len(todo),
                len(manifests),
            )
        if not todo:
            return run_uris
        self._persist_links(context, cluster)
        for index, (_, manifest, _) in enumerate(todo, start=1):
            self.log.info(
                "Batch %d/%d %s: %d tenants, ~%d rows, %s engine",
                index,
                len(todo),
                manifest.batch_id,
                len(manifest.tenants),
                manifest.estimated_rows,
                manifest.engine,
            )
        started = datetime.now(UTC)
        statuses = self._start(cluster, [self._job(uri, m) for uri, m, _ in todo])
        pending = {
            "started_at": started.isoformat(),
            "cluster_created": cluster.created,
            "run_uris": run_uris,
            "batches": [
                {"manifest_uri": uri, "run_uri": run_uri, "step_id": status.step_id, "retried": False}
                for (uri, _, run_uri), status in zip(todo, statuses, strict=True)
            ],
            "finished": {},
        }
        return self._advance(context, cluster, pending, {s.step_id: s for s in statuses})

    def _start(
        self, cluster: ClusterRef, jobs: Sequence[SparkJob], *, on_demand_only: bool = False
    ) -> list[StepStatus]:
        statuses = self.backend.start(cluster, jobs, on_demand_only=on_demand_only)
        self._started = (cluster, [s.step_id for s in statuses if not s.terminal])
        return statuses

    def _advance(
        self, context: Context, cluster: ClusterRef, pending: dict[str, Any], statuses: Mapping[str, StepStatus]
    ) -> list[str]:
        """Settle what ended, resubmit Spot losses once, then wait (defer or block) or record every batch."""
        while True:
            waiting = [b for b in pending["batches"] if b["step_id"] not in pending["finished"]]
            missing = [b["step_id"] for b in waiting if b["step_id"] not in statuses]
            if missing:
                raise ComputeError(f"trigger event lacks steps {missing} on {cluster.cluster_id}")
            lost = []
            for batch in waiting:
                status = statuses[batch["step_id"]]
                if should_retry_on_demand(status, batch["retried"]):
                    lost.append(batch)
                elif status.terminal:
                    pending["finished"][batch["step_id"]] = status.to_dict()
            if lost:
                self.log.warning(
                    "%d steps lost to Spot reclamation (%s); retrying once on on-demand nodes",
                    len(lost),
                    ", ".join(b["step_id"] for b in lost),
                )
                manifests = [BatchManifest.from_json(self.storage.read_text(b["manifest_uri"])) for b in lost]
                jobs = [self._job(b["manifest_uri"], m) for b, m in zip(lost, manifests, strict=True)]
                retried = self._start(cluster, jobs, on_demand_only=True)
                for batch, status in zip(lost, retried, strict=True):
                    batch["step_id"], batch["retried"] = status.step_id, True
                statuses = {**statuses, **{s.step_id: s for s in retried}}
                continue
            running = [b["step_id"] for b in waiting if b["step_id"] not in pending["finished"]]
            if not running:
                return self._complete(cluster, pending)
            if self.deferrable:
                self.log.info("%d batches running on %s; deferring", len(running), cluster.cluster_id)
                self.defer(
                    trigger=self.backend.wait_trigger(cluster, running, poll_interval=self.poll_interval),
                    method_name="execute_complete",
                    kwargs={"pending": pending},
                    timeout=timedelta(hours=12),
                )
            self.log.info("Waiting for %d batches on %s (blocking)", len(running), cluster.cluster_id)
            statuses = {**statuses, **{s.step_id: s for s in self.backend.wait(cluster, running)}}

    def _complete(self, cluster: ClusterRef, pending: Mapping[str, Any]) -> list[str]:
        started = datetime.fromisoformat(pending["started_at"])
        seconds = (datetime.now(UTC) - started).total_seconds()
        cluster = ClusterRef(
            cluster.workload, cluster.cluster_id, cluster.backend, bool(pending["cluster_created"])
        )
        failed = []
        for batch in pending["batches"]:
            manifest = BatchManifest.from_json(self.storage.read_text(batch["manifest_uri"]))
            outcome = outcome_of(StepStatus.from_dict(pending["finished"][batch["step_id"]]), seconds)
            if failure := self._record(
                cluster=cluster,
                uri=batch["manifest_uri"],
                manifest=manifest,
                run_uri=batch["run_uri"],
                outcome=outcome,
                started=started,
            ):
                failed.append(failure)
        self._started = None
        if failed:
            raise ComputeError(failure_message(failed, len(pending["batches"])))
        return list(pending["run_uris"])

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, pending: dict[str, Any] | None = None
    ) -> list[str]:
        """Check the trigger's event, then settle, retry or record as :meth:`execute` does."""
        if not pending:
            raise ComputeError("execute_complete called without the submitted batches")
        cluster = self._cluster()
        if not event or event.get("status") != "done" or event.get("cluster_id") != cluster.cluster_id:
            message = (event or {}).get("message", event)
            raise ComputeError(f"waiting for steps on {cluster.cluster_id} failed: {message}")
        statuses = {s["step_id"]: StepStatus.from_dict(s) for s in event.get("steps", [])}
        return self._advance(context, cluster, pending, statuses)

    def on_kill(self) -> None:
        """Cancel the jobs this task started that are still running."""
        started = self._started
        if started:
            cluster, job_ids = started
            self.log.warning("Task killed: cancelling %d jobs on %s", len(job_ids), cluster.cluster_id)
            self.backend.cancel(cluster, job_ids)
