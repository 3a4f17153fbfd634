"""Build EMR steps from jobs (pure): ``spark-submit`` in cluster mode with the staged code.

The single-node engine's ``arrow`` jobs become plain Python steps on the primary node, run by the
cluster profile's interpreter (``python:``, EMR 7.x: ``/usr/bin/python3.11``).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warpspeed.compute.base import SparkJob
from warpspeed.config.catalog import is_secret
from warpspeed.config.cluster_profiles import DEFAULT_PYTHON, ON_DEMAND_LABEL
from warpspeed.storage.documents import join_uri

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
    job: SparkJob, code: CodeLocation, *, action_on_failure: str = "CONTINUE", on_demand_only: bool = False,
    node_labels: bool = True,
) -> dict[str, Any]:
    """Return the AddJobFlowSteps entry that runs ``job`` with spark-submit in cluster mode.

    :param action_on_failure: the cluster profile's ``action_on_failure``.
    :param on_demand_only: the retry of a step lost to Spot reclamation. With ``node_labels`` its
        executors (and AM) are pinned to ON_DEMAND-labelled nodes; without, it is resubmitted as
        is (YARN rejects a label expression for a label the cluster does not have).
    :param node_labels: whether the cluster profile turns YARN node labels on.
    """
    conf = dict(job.conf)
    if on_demand_only and node_labels:
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


def catalog_args(properties: Mapping[str, str], *, public_only: bool = False) -> list[str]:
    """Return ``--catalog-property KEY=VALUE`` arguments of ``score_arrow`` (sorted).

    :param public_only: leave out properties that look like secrets
        (:data:`~warpspeed.config.catalog.SECRET_MARKERS`): EMR lists step arguments, so the primary
        node gets those from ``~/.pyiceberg.yaml`` or ``PYICEBERG_CATALOG__*``.
    """
    keep = {k: v for k, v in properties.items()
            if not (public_only and is_secret(k))}
    return [arg for key, value in sorted(keep.items()) for arg in ("--catalog-property", f"{key}={value}")]


def python_step(
    job: SparkJob, code: CodeLocation, *, catalog_properties: Mapping[str, str] | None = None,
    action_on_failure: str = "CONTINUE", python: str = DEFAULT_PYTHON,
) -> dict[str, Any]:
    """Return the AddJobFlowSteps entry that runs an ``arrow`` job as plain Python on the primary node.

    ``command-runner.jar`` runs ``bash`` on the primary node: it copies the staged
    ``spark_jobs.zip`` to a temporary folder and runs ``<python> -m spark_jobs.<script>`` from it
    (the zip imports as is); the step fails with the job's exit code. No YARN application and no
    JVM: a small batch costs seconds, not a Spark application's start.

    :param python: the interpreter, the cluster profile's ``python`` (the one the bootstrap
        installed the libraries into).
    """
    module = f"spark_jobs.{job.script.removesuffix('.py')}"
    args = [*job.args, *catalog_args(catalog_properties or {}, public_only=True)]
    script = (
        'set -eu; d="$(mktemp -d)"; trap \'rm -rf "$d"\' EXIT; '
        f'aws s3 cp --only-show-errors {shlex.quote(code.py_files)} "$d/spark_jobs.zip"; '
        f'PYTHONPATH="$d/spark_jobs.zip" {shlex.quote(python)} -m {shlex.quote(module)} {shlex.join(args)}'
    )
    return {
        "Name": step_name(job),
        "ActionOnFailure": action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["bash", "-c", script]},
    }


def job_step(
    job: SparkJob, code: CodeLocation, *, action_on_failure: str = "CONTINUE", on_demand_only: bool = False,
    catalog_properties: Mapping[str, str] | None = None, python: str = DEFAULT_PYTHON, node_labels: bool = True,
) -> dict[str, Any]:
    """Return the step of ``job`` on its engine: :func:`python_step` for ``arrow``, else :func:`spark_step`.

    An ``arrow`` step runs on the (on-demand) primary node, so ``on_demand_only`` changes nothing
    for it but its name.

    :param python: the profile's interpreter (``arrow`` steps).
    :param node_labels: whether the profile turns YARN node labels on (the on-demand retry).
    """
    if job.engine == "arrow":
        step = python_step(job, code, catalog_properties=catalog_properties, action_on_failure=action_on_failure,
                           python=python)
        return step | {"Name": step_name(job, on_demand_only=on_demand_only)}
    return spark_step(job, code, action_on_failure=action_on_failure, on_demand_only=on_demand_only,
                      node_labels=node_labels)
