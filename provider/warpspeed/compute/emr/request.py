"""Turn a cluster profile into the RunJobFlow request, and fingerprint that request (pure).

:func:`build_run_job_flow_request` builds the request dict of a workload's cluster, and
:func:`profile_hash` fingerprints it so the pool only reuses a cluster that was built from
exactly the same request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from warpspeed.compute.staging import bootstrap_root
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.cluster_profiles import (
    ON_DEMAND_LABEL,
    TAG_MANAGED_BY,
    TAG_PROFILE,
    TAG_PROFILE_HASH,
    TAG_WORKLOAD,
    ClusterProfile,
    config_error,
    expand_variables,
)
from warpspeed.exceptions import WarpSpeedConfigError


def _yarn_site(profile: ClusterProfile) -> dict[str, str]:
    if not profile.node_labels:
        return {}
    return {
        "yarn.node-labels.enabled": "true",
        "yarn.node-labels.am.default-node-label-expression": ON_DEMAND_LABEL,
    }


def python_conf(profile: ClusterProfile) -> tuple[dict[str, str], dict[str, Any]]:
    """Return the Spark defaults and the ``spark-env`` classification that make Spark use the profile's Python.

    ``spark.pyspark.python`` / ``spark.pyspark.driver.python`` reach the driver in cluster mode
    (it runs in the YARN application master, where ``spark-env.sh`` of the submitting node does
    not apply) and the executors; ``spark-env`` exports the same interpreter for everything else
    that starts PySpark on the nodes. A profile's own ``spark_defaults`` (a packed virtualenv's
    ``./environment/bin/python``) win over these.
    """
    defaults = {"spark.pyspark.python": profile.python, "spark.pyspark.driver.python": profile.python}
    env = {
        "Classification": "spark-env",
        "Properties": {},
        "Configurations": [
            {
                "Classification": "export",
                "Properties": {"PYSPARK_PYTHON": profile.python, "PYSPARK_DRIVER_PYTHON": profile.python},
            }
        ],
    }
    return defaults, env


def hashed_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """Return the part of a request the profile hash covers (all but Name and warpspeed: tags)."""
    body = {k: v for k, v in request.items() if k != "Name"}
    body["Tags"] = [t for t in request.get("Tags", []) if not str(t["Key"]).startswith("warpspeed:")]
    return body


def profile_hash(request: Mapping[str, Any]) -> str:
    """Fingerprint a RunJobFlow request (canonical JSON, SHA-256, 12 hex digits)."""
    canonical = json.dumps(hashed_request(request), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def cluster_name(workload: str, profile: str, digest: str) -> str:
    """Return the cluster name the pool gives (and looks for): workload, profile, hash."""
    return f"warpspeed-{workload}-{profile}-{digest}"


def build_run_job_flow_request(
    profile: ClusterProfile,
    workload: str,
    *,
    catalog: CatalogConfig,
    variables: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build the complete RunJobFlow request for ``workload`` on ``profile``.

    :param catalog: the Iceberg catalog the cluster's Spark registers (must be ``glue``).
    :param variables: values for ``{name}`` placeholders in URIs and bootstrap arguments
        (``storage_prefix``; ``bootstrap``, the staged bootstrap folder); ``{python}`` is the
        profile's interpreter.
    :return: the request; its ``warpspeed:profile-hash`` tag fingerprints everything else.
    """
    if catalog.kind != "glue":
        raise WarpSpeedConfigError(
            f"catalog_type={catalog.kind!r}: EMR clusters need the Glue catalog; set [warpspeed] "
            "catalog_type=glue and an s3:// warehouse"
        )
    variables = {"python": profile.python, **(variables or {})}
    if "storage_prefix" in variables:
        variables.setdefault("bootstrap", bootstrap_root(variables["storage_prefix"]))
    fleets = [profile.master.request(), profile.core.request()]
    if profile.task is not None:
        fleets.append(profile.task.request())
    instances: dict[str, Any] = {
        "InstanceFleets": fleets,
        "KeepJobFlowAliveWhenNoSteps": True,
        "TerminationProtected": False,
    }
    if profile.subnet_ids:
        instances["Ec2SubnetIds"] = list(profile.subnet_ids)
    python_defaults, spark_env = python_conf(profile)
    spark_defaults = dict(catalog.spark_conf()) | python_defaults | dict(profile.spark_defaults)
    configurations: list[dict[str, Any]] = [
        {"Classification": "iceberg-defaults", "Properties": {"iceberg.enabled": "true"}},
        {"Classification": "spark-defaults", "Properties": dict(sorted(spark_defaults.items()))},
        spark_env,
    ]
    if yarn := _yarn_site(profile):
        configurations.append({"Classification": "yarn-site", "Properties": yarn})
    log_uri = expand_variables(profile.log_uri, variables)
    if not log_uri.startswith(("s3://", "s3n://")):
        raise config_error(
            profile.source,
            f"profiles.{profile.name}.log_uri",
            f"expands to {log_uri!r}; EMR needs an s3:// log URI (set [warpspeed] storage_prefix to s3://)",
        )
    bootstrap = [b.request(variables) for b in profile.bootstrap_actions]
    for i, action in enumerate(bootstrap):
        script = action["ScriptBootstrapAction"]
        texts = [script["Path"], *script["Args"]]
        if not script["Path"].startswith(("s3://", "file:/")) or any("{" in t for t in texts):
            raise config_error(
                profile.source,
                f"profiles.{profile.name}.bootstrap_actions[{i}]",
                f"expands to {script}; its path must be s3:// (or file:/ on the node) and only "
                "{storage_prefix}, {bootstrap} and {python} expand",
            )
    request: dict[str, Any] = {
        "Name": "",
        "ReleaseLabel": profile.release_label,
        "Applications": [{"Name": a} for a in profile.applications],
        "LogUri": log_uri,
        "ServiceRole": profile.service_role,
        "JobFlowRole": profile.job_flow_role,
        "Instances": instances,
        "Configurations": configurations,
        "BootstrapActions": bootstrap,
        "ManagedScalingPolicy": profile.managed_scaling.request(),
        "AutoTerminationPolicy": {"IdleTimeout": profile.idle_timeout_seconds},
        "StepConcurrencyLevel": profile.step_concurrency,
        "VisibleToAllUsers": True,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(profile.tags.items())],
    }
    digest = profile_hash(request)
    request["Name"] = cluster_name(workload, profile.name, digest)
    request["Tags"] += [
        {"Key": TAG_MANAGED_BY, "Value": "warpspeed"},
        {"Key": TAG_WORKLOAD, "Value": workload},
        {"Key": TAG_PROFILE, "Value": profile.name},
        {"Key": TAG_PROFILE_HASH, "Value": digest},
    ]
    return request


def request_hash(request: Mapping[str, Any]) -> str:
    """Return the ``warpspeed:profile-hash`` tag value of a built request."""
    return next(t["Value"] for t in request["Tags"] if t["Key"] == TAG_PROFILE_HASH)
