"""Operator of the window's ensure-clusters step: one cluster per workload with work, reused or created."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from airflow.sdk import Context, XComArg

from warpspeed.compute.base import SparkJob
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.operators._base import aws_template_fields
from warpspeed.operators._compute import ComputeOperator
from warpspeed.operators.score import score_job
from warpspeed.window.manifests import BatchManifest


class EnsureClustersOperator(ComputeOperator):
    """Reuse or create one cluster per workload that has work; return ``{workload: cluster_id}``.

    :param workload_batches: the plan task's output.
    :param workloads_file: workloads YAML (maps a workload to its cluster profile).
    :param cluster_profiles_file: cluster profiles YAML for the ``emr`` backend; default:
        ``cluster_profiles.yaml`` beside ``workloads_file``.
    """

    s3_component = "score"

    template_fields = aws_template_fields("workload_batches", "workloads_file", "cluster_profiles_file")
    ui_color = "#f9e79f"

    def __init__(
        self,
        *,
        workload_batches: Sequence[Mapping[str, Any]] | XComArg,
        workloads_file: str,
        cluster_profiles_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(workloads_file=workloads_file, cluster_profiles_file=cluster_profiles_file, **kwargs)
        self.workload_batches = workload_batches

    def execute(self, context: Context) -> dict[str, str]:
        """Ensure a cluster for every workload in the plan, one ListClusters for all of them.

        A cluster created now starts with the workload's scoring jobs already on it;
        :class:`~warpspeed.operators.score.ScoreBatchesOperator` finds them by name instead of
        submitting them again.
        """
        catalog = WorkloadCatalog.load(cast("str", self.workloads_file))  # required here
        lineage = self.lineage_conf(context)  # steps a new cluster starts with name this task as their parent
        batches = cast("Sequence[Mapping[str, Any]]", self.workload_batches)  # resolved by now
        needs = {
            item["workload"]: (
                catalog[item["workload"]].profile,
                [self._job(uri, lineage) for uri in item.get("batch_manifest_uris") or ()],
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

    def _job(self, uri: str, conf: dict[str, str] | None = None) -> SparkJob:
        manifest = BatchManifest.from_json(self.storage.read_text(uri))
        return score_job(uri, manifest.batch_id, self.settings.catalog.name, manifest.engine, conf)
