"""The EMR compute backend: Spark jobs as steps on the workload's pooled cluster.

Small batches routed to the single-node engine (``arrow`` jobs) run as plain Python steps on
the same cluster's primary node (:func:`warpspeed.compute.emr.steps.python_step`).

It composes the parts: the client hook (:mod:`warpspeed.hooks.emr`), spin-or-reuse under a
lease (:mod:`warpspeed.compute.emr.pool`, :mod:`warpspeed.compute.emr.lease`), step building
(:mod:`warpspeed.compute.emr.steps`), code staging (:mod:`warpspeed.compute.staging`) and the
deferrable wait (:class:`warpspeed.triggers.emr.EmrStepsTrigger`).

**Calls per window** are O(workloads): one ListClusters walk for all workloads (only when no
recorded cluster fits), per workload at most one DescribeCluster and one ListSteps (capacity) or
one RunJobFlow carrying the window's first 256 steps, ``ceil(steps/256)`` AddJobFlowSteps for the
rest, and per poll ``ceil(steps/50)`` ListSteps pages. Starting jobs on a cluster this backend
did not just create reads its active steps once, so a retried task adopts steps still running
from an earlier attempt (same name) instead of submitting them twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

from warpspeed.compute.base import ClusterRef, ComputeBackend, SparkJob, StepStatus
from warpspeed.compute.emr.failures import cluster_failure
from warpspeed.compute.emr.lease import PoolLease, lease_for
from warpspeed.compute.emr.pool import ClusterPool
from warpspeed.compute.emr.request import build_run_job_flow_request
from warpspeed.compute.emr.steps import CodeLocation, job_step, step_name
from warpspeed.compute.staging import content_addressed_root, stage_bootstrap, stage_to_s3
from warpspeed.config.cluster_profiles import TAG_PROFILE, ClusterProfile
from warpspeed.config.profile_catalog import ProfileCatalog
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.hooks.emr import ACTIVE_STEP_STATES, LIST_STEPS_PAGE, EmrPoolHook
from warpspeed.storage.documents import Storage, join_uri
from warpspeed.triggers.emr import EmrStepsTrigger

DEFAULT_ACTION_ON_FAILURE = "CONTINUE"
ADOPTABLE_STEP_STATES = (*ACTIVE_STEP_STATES, "COMPLETED")
"""A same-named step in these states is the job already: waited for or taken as done, not resubmitted."""
LISTED_STEP_STATES = (*ADOPTABLE_STEP_STATES, "FAILED", "INTERRUPTED")
"""What a start lists to adopt: the adoptable states, and the two a step lost to Spot ends in."""


class EmrComputeBackend(ComputeBackend):
    """Run Spark jobs as steps on the workload's pooled EMR cluster.

    Asynchronous: :meth:`start` submits and operators defer on :meth:`wait_trigger`;
    :meth:`run_jobs` is the blocking equivalent (scripts, benchmarks).

    :param profiles_file: the DAG bundle's ``config/cluster_profiles.yaml`` (passed by the DAG).
    """

    name = "emr"
    asynchronous = True

    def __init__(
        self,
        settings: WarpSpeedSettings,
        *,
        profiles_file: str | Path | None = None,
        hook: EmrPoolHook | None = None,
        lease: PoolLease | None = None,
        s3_client: Any = None,
    ) -> None:
        self.settings = settings
        self.profiles_file = Path(profiles_file) if profiles_file else None
        self._hook = hook
        self._lease = lease
        self._s3 = s3_client
        self._fresh: set[str] = set()
        """Clusters this backend created and has not started anything else on."""
        self._launched: dict[str, set[str]] = {}
        """Per created cluster, the names of the steps it was created with."""

    @cached_property
    def hook(self) -> EmrPoolHook:
        """Return the EMR client hook (built lazily)."""
        return self._hook or EmrPoolHook(
            aws_conn_id=self.settings.aws_conn_id, region_name=self.settings.region_name
        )

    @cached_property
    def pool(self) -> ClusterPool:
        """Return spin-or-reuse over the hook."""
        return ClusterPool(self.hook)

    @cached_property
    def s3(self) -> Any:
        """Return the S3 client (code staging and the lease)."""
        if self._s3 is not None:
            return self._s3
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.settings.aws_conn_id, region_name=self.settings.region_name).get_conn()

    @cached_property
    def storage(self) -> Storage:
        """Return the storage under the configured prefix."""
        return self.settings.storage(lambda: self.s3)

    @cached_property
    def lease(self) -> PoolLease:
        """Return the spin-or-reuse lease for the storage prefix."""
        return self._lease or lease_for(self.settings.storage_prefix, lambda: self.s3)

    @cached_property
    def profiles(self) -> ProfileCatalog:
        """Load the cluster profiles the DAG passed."""
        if self.profiles_file is None:
            raise WarpSpeedConfigError(
                "the emr compute backend needs cluster profiles: pass cluster_profiles_file (the DAG "
                "bundle's config/cluster_profiles.yaml) to the operator"
            )
        return ProfileCatalog.load(self.profiles_file)

    @cached_property
    def code(self) -> CodeLocation:
        """Stage the ``spark_jobs`` package (content-addressed) and return where it is."""
        return CodeLocation(stage_to_s3(self.s3, content_addressed_root(self.settings.storage_prefix)))

    @cached_property
    def bootstrap(self) -> str:
        """Stage the bootstrap action (content-addressed) and return its folder (``{bootstrap}``)."""
        return stage_bootstrap(self.s3, self.settings.storage_prefix)

    @cached_property
    def arrow_catalog(self) -> dict[str, str]:
        """Return the pyiceberg catalog properties the single-node engine's Python steps get."""
        return self.settings.catalog.pyiceberg_properties()

    def request_for(self, workload: str, profile: str) -> dict[str, Any]:
        """Build the RunJobFlow request of ``workload`` on ``profile`` (staging its bootstrap action first)."""
        return build_run_job_flow_request(
            self.profiles[profile],
            workload,
            catalog=self.settings.catalog,
            variables={"storage_prefix": self.settings.storage_prefix, "bootstrap": self.bootstrap},
        )

    def _steps(self, profile: ClusterProfile | None, jobs: Sequence[SparkJob], *,
               on_demand_only: bool = False) -> list[dict[str, Any]]:
        """Return the step definitions of ``jobs`` for a cluster of ``profile`` (None: an unknown profile)."""
        options: dict[str, Any] = {"action_on_failure": DEFAULT_ACTION_ON_FAILURE}
        if profile is not None:
            options = {"action_on_failure": profile.action_on_failure, "python": profile.python,
                       "node_labels": profile.node_labels}
        return [job_step(j, self.code, on_demand_only=on_demand_only, catalog_properties=self.arrow_catalog,
                         **options) for j in jobs]

    def registry_uri(self, workload: str) -> str:
        """Return where the pool records a workload's last created cluster."""
        return join_uri(self.settings.storage_prefix, "emr", "pool", f"{workload}.json")

    # -- clusters ---------------------------------------------------------------------------
    def ensure_clusters(
        self, needs: Mapping[str, tuple[str, Sequence[SparkJob]]]
    ) -> dict[str, ClusterRef]:
        """Reuse or create a cluster per workload, listing active clusters at most once for all.

        A created cluster starts with its workload's jobs already in the RunJobFlow request.
        """
        listed: list[Sequence[Mapping[str, Any]]] = []

        def listing() -> Sequence[Mapping[str, Any]]:
            if not listed:
                listed.append(self.hook.active_clusters())
            return listed[0]

        return {
            workload: self._ensure(workload, profile, max(1, len(jobs)), jobs, listing)
            for workload, (profile, jobs) in needs.items()
        }

    def ensure_cluster(self, workload: str, profile: str, needed_steps: int = 1) -> ClusterRef:
        """Reuse or create the workload's cluster (see :mod:`warpspeed.compute.emr.pool`)."""
        return self._ensure(workload, profile, needed_steps, (), None)

    def ensure_cluster_for(self, workload: str, profile: str, needed_steps: int) -> ClusterRef:
        """Reuse or create the workload's cluster with room for ``needed_steps`` steps."""
        return self.ensure_cluster(workload, profile, needed_steps)

    def _ensure(
        self, workload: str, profile: str, needed_steps: int, jobs: Sequence[SparkJob], listing: Any
    ) -> ClusterRef:
        steps = self._steps(self.profiles[profile], jobs)
        choice = self.pool.ensure_cluster(
            workload,
            self.request_for(workload, profile),
            lease=self.lease,
            registry=self.storage,
            registry_uri=self.registry_uri(workload),
            needed_steps=needed_steps,
            listing=listing,
            steps=steps,
        )
        if choice.created:
            self._fresh.add(choice.cluster_id)
            self._launched[choice.cluster_id] = set(choice.launched)
        return ClusterRef(workload=workload, cluster_id=choice.cluster_id, backend=self.name, created=choice.created)

    def profile_of(self, cluster: ClusterRef) -> ClusterProfile | None:
        """Return the profile a cluster was built from (its ``warpspeed:profile`` tag), if it is configured."""
        profile = self.hook.tags(cluster.cluster_id).get(TAG_PROFILE)
        if profile is None or self.profiles_file is None or profile not in self.profiles.names():
            return None
        return self.profiles[profile]

    def action_on_failure(self, cluster: ClusterRef) -> str:
        """Return the ActionOnFailure of the cluster's profile (from its ``warpspeed:profile`` tag)."""
        profile = self.profile_of(cluster)
        return profile.action_on_failure if profile else DEFAULT_ACTION_ON_FAILURE

    # -- jobs -------------------------------------------------------------------------------
    def steps_for(
        self, cluster: ClusterRef, jobs: Sequence[SparkJob], *, on_demand_only: bool = False
    ) -> list[dict[str, Any]]:
        """Return the step definitions of ``jobs`` (interpreter, node labels and failure action of its profile)."""
        return self._steps(self.profile_of(cluster), jobs, on_demand_only=on_demand_only)

    def _adoptable(self, cluster_id: str, names: set[str]) -> dict[str, StepStatus]:
        """Return the steps a start adopts by name (newest first), from one ListSteps walk.

        A cluster this backend just created runs only the steps it was launched with: those are
        adopted in any state, and nothing is listed when none is wanted. On any other cluster a
        same-named step is adopted while it runs, once it completed (an earlier attempt's, or
        launched with the cluster by the task that created it), or once it was lost to Spot: the
        flow then retries it on on-demand nodes, as if this task had watched it fail (a step
        launched with the cluster can be lost before the scoring task starts). A step that
        failed by its own fault is run again. The walk stops when every name is found or after
        one page more than the names fill.
        """
        launched = self._launched.get(cluster_id, set()) & names
        if cluster_id in self._fresh and not launched:
            return {}
        pages = math.ceil(len(names) / LIST_STEPS_PAGE) + 1
        listed = self.hook.list_steps(
            cluster_id,
            self.hook.log_uri(cluster_id),
            lambda steps: names <= {s.name for s in steps} or len(steps) >= pages * LIST_STEPS_PAGE,
            () if launched else LISTED_STEP_STATES,
        )
        found: dict[str, StepStatus] = {}
        for status in listed:
            if status.name in names and (status.name in launched or status.state in ADOPTABLE_STEP_STATES
                                         or status.lost_to_spot):
                found.setdefault(status.name, status)
        return found

    def start(
        self, cluster: ClusterRef, jobs: Sequence[SparkJob], *, on_demand_only: bool = False
    ) -> list[StepStatus]:
        """Submit the jobs as steps; adopt same-named steps still in flight from an earlier attempt."""
        names = [step_name(j, on_demand_only=on_demand_only) for j in jobs]
        adopted = self._adoptable(cluster.cluster_id, set(names))
        new = [j for j, n in zip(jobs, names, strict=True) if n not in adopted]
        if len(new) < len(jobs):
            self.hook.log.info("Adopting %d steps already on %s", len(jobs) - len(new), cluster.cluster_id)
        created = iter(
            self.hook.add_steps(cluster.cluster_id, self.steps_for(cluster, new, on_demand_only=on_demand_only))
            if new else []
        )
        self._fresh.discard(cluster.cluster_id)
        self._launched.pop(cluster.cluster_id, None)
        return [adopted.get(n) or StepStatus(next(created), n, "PENDING") for n in names]

    def submit_jobs(
        self, cluster: ClusterRef, jobs: Sequence[SparkJob], *, on_demand_only: bool = False
    ) -> list[str]:
        """Start the jobs and return their step ids."""
        return [s.step_id for s in self.start(cluster, jobs, on_demand_only=on_demand_only)]

    def wait(self, cluster: ClusterRef, job_ids: Sequence[str]) -> list[StepStatus]:
        """Poll until the steps have ended (blocking)."""
        return self.hook.wait_for_steps(cluster.cluster_id, job_ids, log_uri=self.hook.log_uri(cluster.cluster_id))

    def wait_trigger(
        self, cluster: ClusterRef, job_ids: Sequence[str], *, poll_interval: float = 30.0
    ) -> EmrStepsTrigger:
        """Return the trigger that waits for the steps in the triggerer."""
        return EmrStepsTrigger(
            cluster_id=cluster.cluster_id,
            step_ids=list(job_ids),
            aws_conn_id=self.settings.aws_conn_id,
            region_name=self.settings.region_name,
            log_uri=self.hook.log_uri(cluster.cluster_id),
            poll_interval=poll_interval,
        )

    def explain(self, cluster: ClusterRef, statuses: Sequence[StepStatus]) -> list[StepStatus]:
        """Add why the cluster failed to the steps it took down (one DescribeCluster, only if a step did not complete).

        A step of a cluster whose bootstrap failed, or that lost its instances, ends CANCELLED (or
        FAILED) with nothing of its own to say; the cluster's reason, in the terms of its profile
        (:func:`warpspeed.compute.emr.failures.cluster_failure`), becomes the step's reason.
        """
        if all(s.succeeded or (s.state == "FAILED" and s.message) for s in statuses):
            return list(statuses)
        why = cluster_failure(self.hook.describe(cluster.cluster_id), self.profile_of(cluster), self._read_log)
        if why is None:
            return list(statuses)
        return [s if s.succeeded or (s.state == "FAILED" and s.message) else replace(s, reason=why)
                for s in statuses]

    def _read_log(self, uri: str) -> str | None:
        """Return a gzipped log object's text, or None when it cannot be read (not uploaded yet)."""
        import gzip

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            return gzip.decompress(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()).decode(errors="replace")
        except Exception:  # a missing log must not hide the cluster's reason
            return None

    def cancel(self, cluster: ClusterRef, job_ids: Sequence[str]) -> None:
        """Cancel the steps (those already ended are left as they are by EMR)."""
        if job_ids:
            self.hook.cancel_steps(cluster.cluster_id, job_ids)

    def links(self, cluster: ClusterRef) -> dict[str, Any]:
        """Return the region and log URI the EMR extra links need."""
        region = self.settings.region_name or getattr(self.hook, "region_name", None) or "us-east-1"
        return {"region_name": region, "log_uri": self.hook.log_uri(cluster.cluster_id)}
