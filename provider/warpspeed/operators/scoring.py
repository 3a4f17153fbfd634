"""Operators that make sure clusters exist and run scoring batches on them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from airflow.sdk import Context

from warpspeed.exceptions import ComputeError
from warpspeed.hooks.compute import ClusterRef, ComputeBackend, SparkJob, compute_backend_for
from warpspeed.manifests import BatchManifest, BatchRun
from warpspeed.operators._base import WarpSpeedOperator
from warpspeed.workloads import WorkloadCatalog

SCORE_SCRIPT = "score_batch.py"


class EnsureClustersOperator(WarpSpeedOperator):
    """Reuse or create one cluster per workload that has work; return ``{workload: cluster_id}``.

    :param workload_batches: the plan task's output.
    :param workloads_file: workloads YAML (maps a workload to its cluster profile).
    """

    template_fields = ("workload_batches", "workloads_file")
    ui_color = "#f9e79f"

    def __init__(self, *, workload_batches: Sequence[Mapping[str, Any]], workloads_file: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workload_batches = workload_batches
        self.workloads_file = workloads_file

    @cached_property
    def backend(self) -> ComputeBackend:
        """Build the configured compute backend lazily."""
        return compute_backend_for(self.settings)

    def execute(self, context: Context) -> dict[str, str]:
        """Ensure a cluster for every workload in the plan."""
        catalog = WorkloadCatalog.load(self.workloads_file)
        clusters = {}
        for item in self.workload_batches or []:
            workload = item["workload"]
            ref = self.backend.ensure_cluster(workload, catalog[workload].profile)
            self.log.info("Workload %s: %s cluster %s on %s", workload, "created" if ref.created else "reusing",
                          ref.cluster_id, ref.backend)
            clusters[workload] = ref.cluster_id
        return clusters


class ScoreBatchesOperator(WarpSpeedOperator):
    """Run every batch of one workload on its cluster; return the batch run record URIs.

    A retry skips batches an earlier attempt finished (their run record says SUCCEEDED) and
    reruns the rest; a rerun of a batch overwrites exactly its slices, so it is idempotent.

    :param workload: the workload whose batches these are.
    :param batch_manifest_uris: the batches' manifests.
    :param clusters: ``{workload: cluster_id}`` from :class:`EnsureClustersOperator`.
    """

    template_fields = ("workload", "batch_manifest_uris", "clusters")
    ui_color = "#fadbd8"

    def __init__(
        self,
        *,
        workload: str,
        batch_manifest_uris: Sequence[str],
        clusters: Mapping[str, str],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workload = workload
        self.batch_manifest_uris = batch_manifest_uris
        self.clusters = clusters

    @cached_property
    def backend(self) -> ComputeBackend:
        """Build the configured compute backend lazily."""
        return compute_backend_for(self.settings)

    def _finished_earlier(self, run_uri: str) -> bool:
        if not self.storage.exists(run_uri):
            return False
        return BatchRun.from_json(self.storage.read_text(run_uri)).state == "SUCCEEDED"

    def execute(self, context: Context) -> list[str]:
        """Score the batches; fail the task if any batch failed (after running all of them)."""
        cluster = ClusterRef(self.workload, self.clusters[self.workload], self.backend.name)
        layout = self.window(context).layout(self.settings.storage_prefix)
        manifests = [BatchManifest.from_json(self.storage.read_text(u)) for u in self.batch_manifest_uris]
        run_uris = [layout.run_uri(m.batch_id) for m in manifests]
        todo = [
            (uri, m, run_uri)
            for uri, m, run_uri in zip(self.batch_manifest_uris, manifests, run_uris, strict=True)
            if not self._finished_earlier(run_uri)
        ]
        if len(todo) < len(manifests):
            self.log.info("%d of %d batches finished in an earlier attempt; skipping them",
                          len(manifests) - len(todo), len(manifests))
        failed = []
        for index, (uri, manifest, run_uri) in enumerate(todo, start=1):
            self.log.info("Batch %d/%d %s: %d tenants, ~%d rows", index, len(todo), manifest.batch_id,
                          len(manifest.tenants), manifest.estimated_rows)
            started = datetime.now(UTC)
            job = SparkJob(name=f"warpspeed-{manifest.batch_id}", script=SCORE_SCRIPT,
                           args=("--batch-manifest", uri, "--catalog", self.settings.catalog.name))
            (outcome,) = self.backend.run_jobs(cluster, [job])
            run = BatchRun(
                batch_id=manifest.batch_id, window_id=manifest.window_id, workload=manifest.workload,
                batch_manifest_uri=uri, summary_uri=manifest.summary_uri, backend=cluster.backend,
                cluster_id=cluster.cluster_id, cluster_created=cluster.created, state=outcome.state,
                started_at=started.isoformat(), finished_at=datetime.now(UTC).isoformat(),
                run_seconds=round(outcome.seconds, 3), log_uri=outcome.log_uri, reason=outcome.reason,
            )
            self.storage.write_text(run_uri, run.to_json())
            if not outcome.succeeded:
                failed.append(f"{manifest.batch_id}: {outcome.reason} (log {outcome.log_uri})")
        if failed:
            raise ComputeError(f"{len(failed)} of {len(todo)} batches failed:\n" + "\n".join(failed))
        return run_uris
