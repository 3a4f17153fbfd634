"""The compute backend interface: where Spark jobs of a workload run.

Two implementations sit behind it, chosen by ``[warpspeed] compute_backend``: ``local``
(``spark-submit`` on this machine, :mod:`warpspeed.hooks.local_spark`) and ``emr`` (a pool of
workload-specific EMR clusters). Operators only talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from warpspeed.exceptions import WarpSpeedConfigError

if TYPE_CHECKING:
    from warpspeed.settings import WarpSpeedSettings


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
    """One Spark application: a script of ``spark_jobs/`` and its arguments."""

    name: str
    script: str
    args: tuple[str, ...] = ()
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobOutcome:
    """How a Spark job ended."""

    name: str
    state: Literal["SUCCEEDED", "FAILED"]
    seconds: float
    log_uri: str | None = None
    reason: str | None = None

    @property
    def succeeded(self) -> bool:
        """Tell whether the job succeeded."""
        return self.state == "SUCCEEDED"


class ComputeBackend(ABC):
    """Run Spark jobs of a workload on that workload's cluster."""

    name: str
    asynchronous: bool = False
    """True when jobs are submitted and then waited for (operators defer on the backend's
    trigger); False when :meth:`run_jobs` runs them in the calling process."""

    @abstractmethod
    def ensure_cluster(self, workload: str, profile: str) -> ClusterRef:
        """Return a ready cluster for ``workload`` (reused if one fits, else created)."""

    def ensure_cluster_for(self, workload: str, profile: str, needed_steps: int) -> ClusterRef:
        """Return a cluster for ``workload`` with room for ``needed_steps`` jobs."""
        return self.ensure_cluster(workload, profile)

    @abstractmethod
    def run_jobs(self, cluster: ClusterRef, jobs: Sequence[SparkJob]) -> list[JobOutcome]:
        """Run ``jobs`` on ``cluster`` and return their outcomes, in order."""

    def submit_jobs(
        self, cluster: ClusterRef, jobs: Sequence[SparkJob], *, on_demand_only: bool = False
    ) -> list[str]:
        """Start ``jobs`` without waiting; return their ids (asynchronous backends only).

        :param on_demand_only: run on on-demand capacity only (a retry after Spot loss).
        """
        raise NotImplementedError(f"the {self.name} backend runs jobs synchronously; use run_jobs")

    def wait_trigger(
        self, cluster: ClusterRef, job_ids: Sequence[str], *, poll_interval: float = 30.0
    ) -> Any:
        """Return a trigger that fires when the jobs have ended (asynchronous backends only)."""
        raise NotImplementedError(f"the {self.name} backend runs jobs synchronously; use run_jobs")


def compute_backend_for(settings: WarpSpeedSettings, profiles_file: str | None = None) -> ComputeBackend:
    """Return the backend named by ``[warpspeed] compute_backend``.

    :param profiles_file: cluster profiles YAML for the ``emr`` backend (default: the DAG
        bundle's ``config/cluster_profiles.yaml``).
    """
    if settings.compute_backend == "local":
        from warpspeed.hooks.local_spark import LocalSparkBackend

        return LocalSparkBackend(settings)
    if settings.compute_backend == "emr":
        from warpspeed.hooks.emr_pool import EmrComputeBackend

        return EmrComputeBackend(settings, profiles_file=profiles_file)
    raise WarpSpeedConfigError(
        f"compute_backend {settings.compute_backend!r} is not available; use 'local' or 'emr'"
    )
