"""Build EMR steps from Spark jobs (pure): ``spark-submit`` in cluster mode with the staged code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warpspeed.cluster_profiles import ON_DEMAND_LABEL
from warpspeed.compute.base import SparkJob
from warpspeed.storage import join_uri

ON_DEMAND_RETRY_SUFFIX = "#on-demand"


@dataclass(frozen=True)
class CodeLocation:
    """Where the ``spark_jobs`` package is staged for a cluster."""

    root: str

    @property
    def py_files(self) -> str:
        """Return the zipped package's URI (``--py-files``)."""
        return join_uri(self.root, "spark_jobs.zip")

    def script(self, name: str) -> str:
        """Return a job script's URI."""
        return join_uri(self.root, name)


def step_name(job: SparkJob, *, on_demand_only: bool = False) -> str:
    """Return the step name of ``job``: its name, marked when it is the on-demand retry."""
    return job.name + (ON_DEMAND_RETRY_SUFFIX if on_demand_only else "")


def spark_step(
    job: SparkJob, code: CodeLocation, *, action_on_failure: str = "CONTINUE", on_demand_only: bool = False
) -> dict[str, Any]:
    """Return the AddJobFlowSteps entry that runs ``job`` with spark-submit in cluster mode.

    :param action_on_failure: the cluster profile's ``action_on_failure``.
    :param on_demand_only: pin executors (and the AM) to ON_DEMAND-labelled nodes: how a step
        lost to Spot reclamation is retried.
    """
    conf = dict(job.conf)
    if on_demand_only:
        conf |= {
            "spark.yarn.executor.nodeLabelExpression": ON_DEMAND_LABEL,
            "spark.yarn.am.nodeLabelExpression": ON_DEMAND_LABEL,
        }
    args = ["spark-submit", "--deploy-mode", "cluster", "--py-files", code.py_files]
    for key, value in sorted(conf.items()):
        args += ["--conf", f"{key}={value}"]
    args += [code.script(job.script), *job.args]
    return {
        "Name": step_name(job, on_demand_only=on_demand_only),
        "ActionOnFailure": action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }
