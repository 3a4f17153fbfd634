"""The compute backend interface: where Spark jobs of a workload run.

Two implementations sit behind it, chosen by ``[warpspeed] compute_backend``: ``local``
(``spark-submit`` on this machine, :mod:`warpspeed.hooks.local_spark`) and ``emr`` (a pool of
workload-specific EMR clusters). Operators only talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

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

    @abstractmethod
    def ensure_cluster(self, workload: str, profile: str) -> ClusterRef:
        """Return a ready cluster for ``workload`` (reused if one fits, else created)."""

    @abstractmethod
    def run_jobs(self, cluster: ClusterRef, jobs: Sequence[SparkJob]) -> list[JobOutcome]:
        """Run ``jobs`` on ``cluster`` and return their outcomes, in order."""


def compute_backend_for(settings: WarpSpeedSettings) -> ComputeBackend:
    """Return the backend named by ``[warpspeed] compute_backend``."""
    if settings.compute_backend == "local":
        from warpspeed.hooks.local_spark import LocalSparkBackend

        return LocalSparkBackend(settings)
    raise WarpSpeedConfigError(
        f"compute_backend {settings.compute_backend!r} is not available in this version; use 'local'"
    )
