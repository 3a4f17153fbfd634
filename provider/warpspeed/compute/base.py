"""The compute backend interface: where Spark jobs of a workload run.

Two implementations sit behind it, chosen by ``[warpspeed] compute_backend``: ``local``
(``spark-submit`` on this machine, :mod:`warpspeed.compute.local.backend`) and ``emr`` (a pool of
workload-specific EMR clusters, :mod:`warpspeed.compute.emr.backend`). A backend starts, waits
for and cancels jobs and reports their :class:`~warpspeed.compute.flow.StepStatus`; how a task
drives them (defer while they run, resubmit a Spot loss once, judge their ends) is the one flow
of :mod:`warpspeed.compute.flow`, which :meth:`ComputeBackend.run_jobs` runs blocking.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from warpspeed.compute.flow import JobFlow, JobOutcome, StepStatus, drive

__all__ = ["ClusterRef", "ComputeBackend", "JobOutcome", "SparkJob", "StepStatus"]
"""What a backend speaks; :class:`StepStatus` and :class:`JobOutcome` are defined by the flow."""


@dataclass(frozen=True)
class ClusterRef:
    """A place where a workload's Spark jobs run.

    :param created: True when this call created the cluster, False when it reused one.
    """

    workload: str
    cluster_id: str
    backend: str
    created: bool = False


@dataclass(frozen=True)
class SparkJob:
    """One Spark application: a script of ``spark_jobs/`` and its arguments.

    :param name: unique per piece of work and run (e.g. batch id): a retry finds a job still
        running from an earlier attempt by this name and waits for it instead of resubmitting.
    :param engine: ``spark`` (a Spark application) or ``arrow`` (a plain Python job of
        ``spark_jobs/``, the single-node engine: no JVM, ``conf`` unused).
    """

    name: str
    script: str
    args: tuple[str, ...] = ()
    conf: dict[str, str] = field(default_factory=dict)
    engine: str = "spark"


class ComputeBackend(ABC):
    """Run Spark jobs of a workload on that workload's cluster."""

    name: str
    asynchronous: bool = False
    """True when :meth:`start` only submits (operators then defer on :meth:`wait_trigger`);
    False when :meth:`start` runs the jobs to completion in the calling process."""

    @abstractmethod
    def ensure_cluster(self, workload: str, profile: str) -> ClusterRef:
        """Return a ready cluster for ``workload`` (reused if one fits, else created)."""

    def ensure_cluster_for(self, workload: str, profile: str, needed_steps: int) -> ClusterRef:
        """Return a cluster for ``workload`` with room for ``needed_steps`` jobs."""
        return self.ensure_cluster(workload, profile)

    def ensure_clusters(
        self, needs: Mapping[str, tuple[str, Sequence[SparkJob]]]
    ) -> dict[str, ClusterRef]:
        """Return a cluster per workload of ``{workload: (profile, jobs)}``.

        A backend may launch a created cluster with the jobs already on it; :meth:`start`
        then finds them by name instead of submitting them again.
        """
        return {w: self.ensure_cluster_for(w, p, max(1, len(j))) for w, (p, j) in needs.items()}

    @abstractmethod
    def start(
        self, cluster: ClusterRef, jobs: Sequence[SparkJob], *, on_demand_only: bool = False
    ) -> list[StepStatus]:
        """Start ``jobs`` (adopting same-named jobs still running) and return their statuses, in order.

        :param on_demand_only: run on on-demand capacity only (a retry after Spot loss).
        """

    def wait(self, cluster: ClusterRef, job_ids: Sequence[str]) -> list[StepStatus]:
        """Block until the jobs have ended (asynchronous backends; synchronous ones have ended)."""
        raise NotImplementedError(f"the {self.name} backend runs jobs to completion in start()")

    def wait_trigger(
        self, cluster: ClusterRef, job_ids: Sequence[str], *, poll_interval: float = 30.0
    ) -> Any:
        """Return a trigger that fires when the jobs have ended (asynchronous backends only)."""
        raise NotImplementedError(f"the {self.name} backend runs jobs to completion in start()")

    @abstractmethod
    def cancel(self, cluster: ClusterRef, job_ids: Sequence[str]) -> None:
        """Cancel jobs this process started that are still running (``on_kill``)."""

    def explain(self, cluster: ClusterRef, statuses: Sequence[StepStatus]) -> list[StepStatus]:
        """Return the final statuses with what the backend knows of why jobs that did not complete ended.

        The default knows nothing more than the statuses say; EMR adds why a failed cluster took
        its steps down (:meth:`warpspeed.compute.emr.backend.EmrComputeBackend.explain`).
        """
        return list(statuses)

    def links(self, cluster: ClusterRef) -> dict[str, Any] | None:
        """Return what the UI links of a cluster need (region, log URI), or None when it has none."""
        return None

    def run_jobs(self, cluster: ClusterRef, jobs: Sequence[SparkJob]) -> list[JobOutcome]:
        """Run ``jobs`` to their end (blocking, the flow without deferring); return outcomes in order."""
        started_at = datetime.now(UTC)
        statuses = self.start(cluster, jobs)
        flow = drive(
            JobFlow.begin(statuses, started_at),
            statuses,
            resubmit=lambda lost: self.start(cluster, [jobs[i] for i in lost], on_demand_only=True),
            wait=lambda step_ids: self.wait(cluster, step_ids),
        )
        flow.restate(self.explain(cluster, flow.finals()))
        return flow.outcomes()
