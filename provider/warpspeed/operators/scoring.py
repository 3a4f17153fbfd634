"""Operators that make sure clusters exist and run scoring batches on them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from airflow.sdk import Context, XComArg

from warpspeed.exceptions import ComputeError
from warpspeed.hooks.compute import ClusterRef, ComputeBackend, JobOutcome, SparkJob, compute_backend_for
from warpspeed.links.emr_pool import (
    EmrPoolClusterLink,
    EmrPoolSparkHistoryLink,
    EmrPoolStepLogsLink,
    step_logs_prefix,
)
from warpspeed.manifests import BatchManifest, BatchRun
from warpspeed.operators._base import WarpSpeedOperator
from warpspeed.workloads import WorkloadCatalog

SCORE_SCRIPT = "score_batch.py"
PROFILES_FILE_NAME = "cluster_profiles.yaml"


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
        """Ensure a cluster for every workload in the plan (with room for its batches)."""
        catalog = WorkloadCatalog.load(self.workloads_file)
        clusters = {}
        batches = cast("Sequence[Mapping[str, Any]]", self.workload_batches)  # resolved by now
        for item in batches or []:
            workload = item["workload"]
            needed = max(1, len(item.get("batch_manifest_uris") or ()))
            ref = self.backend.ensure_cluster_for(workload, catalog[workload].profile, needed)
            self.log.info(
                "Workload %s: %s cluster %s on %s",
                workload,
                "created" if ref.created else "reusing",
                ref.cluster_id,
                ref.backend,
            )
            clusters[workload] = ref.cluster_id
        return clusters


class ScoreBatchesOperator(WarpSpeedOperator):
    """Run every batch of one workload on its cluster; return the batch run record URIs.

    A retry skips batches an earlier attempt finished (their run record says SUCCEEDED) and
    reruns the rest; a rerun of a batch overwrites exactly its slices, so it is idempotent.

    With an asynchronous backend (EMR) all batches are submitted at once (as few
    AddJobFlowSteps calls as possible) and, when ``deferrable``, the task waits in the
    triggerer; a step lost to Spot reclamation is resubmitted once pinned to on-demand nodes.
    The local backend runs the batches one after another in the worker.

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
        return SparkJob(
            name=f"warpspeed-{manifest.batch_id}",
            script=SCORE_SCRIPT,
            args=("--batch-manifest", uri, "--catalog", self.settings.catalog.name),
        )

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
        hook = getattr(self.backend, "hook", None)
        region = self.settings.catalog.region or (getattr(hook, "region_name", None) or "us-east-1")
        log_uri = hook.log_uri(cluster.cluster_id) if hook is not None else None
        common = {
            "context": context,
            "operator": self,
            "region_name": region,
            "aws_partition": "aws",
            "cluster_id": cluster.cluster_id,
        }
        EmrPoolClusterLink.persist(**common)
        EmrPoolStepLogsLink.persist(**common, log_prefix=step_logs_prefix(log_uri, cluster.cluster_id))
        EmrPoolSparkHistoryLink.persist(**common)

    def execute(self, context: Context) -> list[str]:
        """Score the batches; fail the task if any batch failed (after running all of them)."""
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
        if todo and self.backend.asynchronous:
            return self._execute_async(context, cluster, todo, run_uris)
        failed = []
        for index, (uri, manifest, run_uri) in enumerate(todo, start=1):
            self.log.info(
                "Batch %d/%d %s: %d tenants, ~%d rows",
                index,
                len(todo),
                manifest.batch_id,
                len(manifest.tenants),
                manifest.estimated_rows,
            )
            started = datetime.now(UTC)
            (outcome,) = self.backend.run_jobs(cluster, [self._job(uri, manifest)])
            if failure := self._record(
                cluster=cluster, uri=uri, manifest=manifest, run_uri=run_uri, outcome=outcome, started=started
            ):
                failed.append(failure)
        if failed:
            raise ComputeError(f"{len(failed)} of {len(todo)} batches failed:\n" + "\n".join(failed))
        return run_uris

    # -- asynchronous backends (EMR steps) ----------------------------------------------------
    def _execute_async(
        self,
        context: Context,
        cluster: ClusterRef,
        todo: Sequence[tuple[str, BatchManifest, str]],
        run_uris: list[str],
    ) -> list[str]:
        self._persist_links(context, cluster)
        jobs = [self._job(uri, m) for uri, m, _ in todo]
        started = datetime.now(UTC)
        if not self.deferrable:
            self.log.info("Running %d batches on %s (blocking)", len(jobs), cluster.cluster_id)
            outcomes = self.backend.run_jobs(cluster, jobs)
            failed = [
                f
                for (uri, m, run_uri), o in zip(todo, outcomes, strict=True)
                if (
                    f := self._record(
                        cluster=cluster, uri=uri, manifest=m, run_uri=run_uri, outcome=o, started=started
                    )
                )
            ]
            if failed:
                raise ComputeError(f"{len(failed)} of {len(todo)} batches failed:\n" + "\n".join(failed))
            return run_uris
        step_ids = self.backend.submit_jobs(cluster, jobs)
        self.log.info("Submitted %d batches as steps on %s; deferring", len(step_ids), cluster.cluster_id)
        pending = {
            "started_at": started.isoformat(),
            "cluster_created": cluster.created,
            "run_uris": run_uris,
            "batches": [
                {"manifest_uri": uri, "run_uri": run_uri, "step_id": step_id, "retried": False}
                for (uri, _, run_uri), step_id in zip(todo, step_ids, strict=True)
            ],
            "finished": {},
        }
        self._defer(cluster, step_ids, pending)
        return run_uris  # pragma: no cover - defer() raises

    def _defer(self, cluster: ClusterRef, step_ids: Sequence[str], pending: dict[str, Any]) -> None:
        trigger = self.backend.wait_trigger(cluster, step_ids, poll_interval=self.poll_interval)
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            kwargs={"pending": pending},
            timeout=timedelta(hours=12),
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, pending: dict[str, Any] | None = None
    ) -> list[str]:
        """Check the trigger's event, retry Spot-lost steps once on on-demand, record every batch."""
        from warpspeed.hooks.emr_pool import StepStatus, outcome_of

        if not pending:
            raise ComputeError("execute_complete called without the submitted batches")
        cluster = self._cluster()
        if not event or event.get("status") != "done" or event.get("cluster_id") != cluster.cluster_id:
            message = (event or {}).get("message", event)
            raise ComputeError(f"waiting for steps on {cluster.cluster_id} failed: {message}")
        states = {s["step_id"]: StepStatus.from_dict(s) for s in event.get("steps", [])}
        waiting = [b for b in pending["batches"] if b["step_id"] not in pending["finished"]]
        missing = [b["step_id"] for b in waiting if b["step_id"] not in states]
        if missing:
            raise ComputeError(f"trigger event lacks steps {missing} on {cluster.cluster_id}")
        finished = dict(pending["finished"])
        lost = []
        for batch in waiting:
            status = states[batch["step_id"]]
            if status.lost_to_spot and not batch["retried"]:
                lost.append(batch)
            else:
                finished[batch["step_id"]] = status.to_dict()
        if lost:
            self.log.warning(
                "%d steps lost to Spot reclamation (%s); retrying once on on-demand nodes",
                len(lost),
                ", ".join(b["step_id"] for b in lost),
            )
            manifests = [BatchManifest.from_json(self.storage.read_text(b["manifest_uri"])) for b in lost]
            jobs = [self._job(b["manifest_uri"], m) for b, m in zip(lost, manifests, strict=True)]
            new_ids = self.backend.submit_jobs(cluster, jobs, on_demand_only=True)
            for batch, new_id in zip(lost, new_ids, strict=True):
                batch["step_id"], batch["retried"] = new_id, True
            self._defer(cluster, new_ids, {**pending, "finished": finished})
        started = datetime.fromisoformat(pending["started_at"])
        seconds = (datetime.now(UTC) - started).total_seconds()
        cluster = ClusterRef(
            cluster.workload, cluster.cluster_id, cluster.backend, bool(pending["cluster_created"])
        )
        failed = []
        for batch in pending["batches"]:
            manifest = BatchManifest.from_json(self.storage.read_text(batch["manifest_uri"]))
            outcome = outcome_of(StepStatus.from_dict(finished[batch["step_id"]]), seconds)
            if failure := self._record(
                cluster=cluster,
                uri=batch["manifest_uri"],
                manifest=manifest,
                run_uri=batch["run_uri"],
                outcome=outcome,
                started=started,
            ):
                failed.append(failure)
        if failed:
            raise ComputeError(
                f"{len(failed)} of {len(pending['batches'])} batches failed:\n" + "\n".join(failed)
            )
        return list(pending["run_uris"])
