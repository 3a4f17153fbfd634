"""Pick the compute backend that ``[warpspeed] compute_backend`` names, and the cluster profiles it reads."""

from __future__ import annotations

from pathlib import Path

from warpspeed.compute.base import ComputeBackend
from warpspeed.compute.emr.backend import EmrComputeBackend
from warpspeed.compute.local.backend import LocalSparkBackend
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.exceptions import WarpSpeedConfigError

PROFILES_FILE_NAME = "cluster_profiles.yaml"


def profiles_file_for(workloads_file: str | Path | None, cluster_profiles_file: str | Path | None) -> str | None:
    """Return the cluster profiles YAML a task's backend reads: the one given, else the one beside the workloads.

    The one rule for every operator that starts jobs: the cluster a task creates and the steps
    the next task submits to it (Spot retries included) read the same profiles.
    """
    if cluster_profiles_file:
        return str(cluster_profiles_file)
    return str(Path(workloads_file).with_name(PROFILES_FILE_NAME)) if workloads_file else None


def compute_backend_for(
    settings: WarpSpeedSettings, profiles_file: str | Path | None = None
) -> ComputeBackend:
    """Return the backend named by ``[warpspeed] compute_backend``.

    :param profiles_file: cluster profiles YAML for the ``emr`` backend (the DAG bundle's
        ``config/cluster_profiles.yaml``, passed by the DAG).
    """
    if settings.compute_backend == "local":
        return LocalSparkBackend(settings)
    if settings.compute_backend == "emr":
        return EmrComputeBackend(settings, profiles_file=profiles_file)
    raise WarpSpeedConfigError(
        f"compute_backend {settings.compute_backend!r} is not available; use 'local' or 'emr'"
    )
