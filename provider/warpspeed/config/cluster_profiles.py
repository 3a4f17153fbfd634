"""Workload cluster profiles: YAML in, a validated EMR ``RunJobFlow`` request out.

A profile describes the EMR-on-EC2 cluster one workload runs on: release, applications, an
on-demand primary (master) and core fleet, a Spot task fleet of several weighted instance
types that switches to on-demand when Spot capacity does not arrive in time, managed scaling
(with a cap on on-demand units), idle auto-termination, step concurrency, YARN node labels so
application masters land on on-demand nodes, Iceberg with the Glue catalog, logs, bootstrap
actions and tags.

Everything here is pure: :func:`build_run_job_flow_request` turns a profile into the request
dict, and :func:`profile_hash` fingerprints that request so the pool only reuses a cluster
that was built from exactly the same request. The limits EMR enforces are checked before any
API call, with errors that name the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from warpspeed.config.spark_properties import spark_defaults_problems
from warpspeed.exceptions import WarpSpeedConfigError

DEFAULT_RELEASE = "emr-7.14.0"
DEFAULT_APPLICATIONS = ("Spark", "Hadoop")
DEFAULT_PYTHON = "/usr/bin/python3.11"
"""The interpreter Spark, the bootstrap and the Python steps use on EMR 7.x nodes: the release ships
Python 3.9 (the default ``python3``) and 3.11 (Amazon EMR release guide, application versions); the
job code needs 3.11 (``datetime.UTC``) and so do the model libraries the bootstrap installs."""
ACTIVE_CLUSTER_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
"""Cluster states in which a cluster can still take steps."""

MAX_INSTANCE_TYPES_PER_FLEET = 30
"""EMR's limit per instance fleet when an allocation strategy is set (always, here)."""
MAX_STEP_CONCURRENCY = 256
MAX_ACTIVE_STEPS = 256
"""EMR keeps at most 256 PENDING/RUNNING steps per cluster."""
MAX_STEPS_PER_ADD_CALL = 256
SPOT_TIMEOUT_MINUTES = (5, 1440)
IDLE_TIMEOUT_SECONDS = (60, 604_800)
ACTIONS_ON_FAILURE = ("CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW")
TIMEOUT_ACTIONS = ("SWITCH_TO_ON_DEMAND", "TERMINATE_CLUSTER")
SPOT_ALLOCATION = "price-capacity-optimized"
ON_DEMAND_ALLOCATION = "lowest-price"
UNIT_TYPES = ("InstanceFleetUnits", "VCPU")
ON_DEMAND_LABEL = "ON_DEMAND"

TAG_MANAGED_BY = "warpspeed:managed-by"
TAG_WORKLOAD = "warpspeed:workload"
TAG_PROFILE = "warpspeed:profile"
TAG_PROFILE_HASH = "warpspeed:profile-hash"


def expand_variables(text: str, variables: Mapping[str, str]) -> str:
    """Replace ``{name}`` placeholders (e.g. ``{storage_prefix}``) with their values."""
    for key, value in variables.items():
        text = text.replace("{" + key + "}", value.rstrip("/"))
    return text


def config_error(source: str, path: str, message: str) -> WarpSpeedConfigError:
    return WarpSpeedConfigError(f"{source}: {path} {message}")


def check_between(source: str, path: str, value: int, lo: int, hi: int) -> None:
    """Raise naming the field unless ``lo <= value <= hi`` (an EMR limit)."""
    if not lo <= value <= hi:
        raise config_error(source, path, f"={value} must be between {lo} and {hi}")


def check_one_of(source: str, path: str, value: str, allowed: tuple[str, ...], where: str = "") -> None:
    """Raise naming the field and the values EMR accepts unless ``value`` is one of ``allowed``.

    :param where: added to the message, e.g. `` for instance fleets``.
    """
    if value not in allowed:
        raise config_error(source, path, f"={value!r} must be one of {', '.join(allowed)}{where}")


@dataclass(frozen=True)
class InstanceType:
    """One EC2 instance type of a fleet and how many capacity units it counts for."""

    instance_type: str
    weighted_capacity: int = 1
    ebs_gib: int | None = None

    def request(self) -> dict[str, Any]:
        """Return the ``InstanceTypeConfigs`` entry."""
        entry: dict[str, Any] = {
            "InstanceType": self.instance_type,
            "WeightedCapacity": self.weighted_capacity,
        }
        if self.ebs_gib:
            entry["EbsConfiguration"] = {
                "EbsBlockDeviceConfigs": [
                    {
                        "VolumeSpecification": {"VolumeType": "gp3", "SizeInGB": self.ebs_gib},
                        "VolumesPerInstance": 1,
                    }
                ]
            }
        return entry


@dataclass(frozen=True)
class FleetSpec:
    """One instance fleet (MASTER, CORE or TASK).

    :param on_demand_units: target on-demand capacity (in weighted units).
    :param spot_units: target Spot capacity (in weighted units).
    :param spot_timeout_minutes: how long to wait for Spot capacity before ``timeout_action``.
    """

    role: str
    instance_types: tuple[InstanceType, ...]
    on_demand_units: int = 0
    spot_units: int = 0
    spot_timeout_minutes: int = 10
    timeout_action: str = "SWITCH_TO_ON_DEMAND"

    def validate(self, source: str, path: str) -> None:
        """Check EMR's per-fleet limits; raise naming the field."""
        if not self.instance_types:
            raise config_error(source, f"{path}.instance_types", "must list at least one instance type")
        if len(self.instance_types) > MAX_INSTANCE_TYPES_PER_FLEET:
            raise config_error(
                source,
                f"{path}.instance_types",
                f"lists {len(self.instance_types)} types; EMR allows at most "
                f"{MAX_INSTANCE_TYPES_PER_FLEET} per fleet",
            )
        names = [t.instance_type for t in self.instance_types]
        if len(set(names)) != len(names):
            raise config_error(source, f"{path}.instance_types", f"repeats an instance type: {names}")
        for i, t in enumerate(self.instance_types):
            if not t.instance_type or "." not in t.instance_type:
                raise config_error(
                    source, f"{path}.instance_types[{i}].type", f"{t.instance_type!r} is not an EC2 type"
                )
            if not 1 <= t.weighted_capacity <= 1000:
                raise config_error(source, f"{path}.instance_types[{i}].weight", "must be between 1 and 1000")
        if self.on_demand_units < 0 or self.spot_units < 0:
            raise config_error(source, path, "capacity units must not be negative")
        if self.role == "MASTER":
            if self.on_demand_units + self.spot_units != 1 or self.spot_units:
                raise config_error(source, f"{path}.on_demand_units", "must be 1 (one on-demand primary node)")
            if len(self.instance_types) > 5:
                raise config_error(
                    source, f"{path}.instance_types", "EMR allows at most 5 types for the primary fleet"
                )
        elif self.role == "CORE":
            if self.spot_units:
                raise config_error(
                    source,
                    f"{path}.spot_units",
                    "must be 0: core nodes hold HDFS and the AMs, keep them on-demand",
                )
            if self.on_demand_units < 1:
                raise config_error(source, f"{path}.on_demand_units", "must be at least 1")
        if self.spot_units:
            check_between(source, f"{path}.spot_timeout_minutes", self.spot_timeout_minutes, *SPOT_TIMEOUT_MINUTES)
            check_one_of(source, f"{path}.timeout_action", self.timeout_action, TIMEOUT_ACTIONS)

    def request(self) -> dict[str, Any]:
        """Return the ``InstanceFleets`` entry."""
        fleet: dict[str, Any] = {
            "Name": f"warpspeed-{self.role.lower()}",
            "InstanceFleetType": self.role,
            "TargetOnDemandCapacity": self.on_demand_units,
            "TargetSpotCapacity": self.spot_units,
            "InstanceTypeConfigs": [t.request() for t in self.instance_types],
        }
        spec: dict[str, Any] = {}
        if self.on_demand_units:
            spec["OnDemandSpecification"] = {"AllocationStrategy": ON_DEMAND_ALLOCATION}
        if self.spot_units:
            spec["SpotSpecification"] = {
                "TimeoutDurationMinutes": self.spot_timeout_minutes,
                "TimeoutAction": self.timeout_action,
                "AllocationStrategy": SPOT_ALLOCATION,
            }
        if spec:
            fleet["LaunchSpecifications"] = spec
        return fleet


@dataclass(frozen=True)
class ManagedScaling:
    """Managed scaling limits (``ComputeLimits``), counted in ``unit_type`` over core and task nodes."""

    min_units: int
    """Floor the cluster never scales below; at most the core fleet's on-demand units (it keeps them for life)."""
    max_units: int
    """Ceiling of core plus task capacity."""
    max_on_demand_units: int
    """Part of the ceiling that may be on-demand (at least the core fleet's units); capacity beyond it is Spot."""
    max_core_units: int | None = None
    """Ceiling of the core fleet alone (None: EMR may grow core up to ``max_units``)."""
    unit_type: str = "InstanceFleetUnits"
    """What a unit is: a fleet's weighted capacity unit (``InstanceFleetUnits``) or a ``VCPU``."""

    def validate(self, source: str, path: str, core_units: int) -> None:
        """Check the limits are consistent; raise naming the field.

        EMR's ``ComputeLimits`` count core and task nodes only, never the primary node, so the
        floor is at most the core fleet's units: a floor above it keeps extra nodes for the
        cluster's whole life.
        """
        check_one_of(source, f"{path}.unit_type", self.unit_type, UNIT_TYPES, " for instance fleets")
        if self.min_units < 1:
            raise config_error(source, f"{path}.min_units", "must be at least 1")
        if self.unit_type == "InstanceFleetUnits" and self.min_units > core_units:
            raise config_error(
                source,
                f"{path}.min_units",
                f"={self.min_units} is above the core fleet's {core_units} on-demand units; managed scaling "
                "counts core and task nodes only (not the primary node), so set it to at most "
                f"{core_units}",
            )
        if self.max_units < self.min_units:
            raise config_error(source, f"{path}.max_units", f"={self.max_units} is below min_units={self.min_units}")
        if not 0 < self.max_on_demand_units <= self.max_units:
            raise config_error(
                source,
                f"{path}.max_on_demand_units",
                f"={self.max_on_demand_units} must be between 1 and max_units={self.max_units}",
            )
        if self.unit_type == "InstanceFleetUnits" and self.max_on_demand_units < core_units:
            raise config_error(
                source,
                f"{path}.max_on_demand_units",
                f"={self.max_on_demand_units} is below the core fleet's {core_units} on-demand units",
            )
        if self.max_core_units is not None and not 0 < self.max_core_units <= self.max_units:
            raise config_error(source, f"{path}.max_core_units", f"must be between 1 and max_units={self.max_units}")

    def request(self) -> dict[str, Any]:
        """Return the ``ManagedScalingPolicy``."""
        limits: dict[str, Any] = {
            "UnitType": self.unit_type,
            "MinimumCapacityUnits": self.min_units,
            "MaximumCapacityUnits": self.max_units,
            "MaximumOnDemandCapacityUnits": self.max_on_demand_units,
        }
        if self.max_core_units is not None:
            limits["MaximumCoreCapacityUnits"] = self.max_core_units
        return {"ComputeLimits": limits}


@dataclass(frozen=True)
class BootstrapAction:
    """A script every node runs before applications start."""

    name: str
    path: str
    args: tuple[str, ...] = ()

    def request(self, variables: Mapping[str, str]) -> dict[str, Any]:
        """Return the ``BootstrapActions`` entry (``{storage_prefix}``, ``{bootstrap}``, ``{python}`` expand)."""
        return {
            "Name": self.name,
            "ScriptBootstrapAction": {
                "Path": expand_variables(self.path, variables),
                "Args": [expand_variables(a, variables) for a in self.args],
            },
        }


@dataclass(frozen=True)
class ClusterProfile:
    """One workload cluster profile; validated on construction.

    :param log_uri: where EMR writes cluster and step logs; ``{storage_prefix}`` expands.
    :param idle_timeout_seconds: auto-termination after this long without work (60-604800).
    :param step_concurrency: steps running at once (1-256).
    :param action_on_failure: what a failed step does to the cluster; only ``CONTINUE`` is
        allowed when ``step_concurrency`` > 1.
    :param node_labels: turn on YARN node labels and pin application masters to on-demand
        nodes (EMR 7 ships with labels off).
    :param python: the interpreter on the nodes that runs the Spark driver and executors
        (``spark-env`` and ``spark.pyspark.python``), the Python steps on the primary node and the
        bootstrap's ``pip`` (``{python}`` expands in bootstrap paths and arguments).
    :param subnet_ids: EC2 subnets the fleets may use; several (one per Availability Zone) let
        Spot capacity come from any of them. Empty: EMR's default subnet of the account.
    """

    name: str
    master: FleetSpec
    core: FleetSpec
    task: FleetSpec | None
    managed_scaling: ManagedScaling
    log_uri: str
    release_label: str = DEFAULT_RELEASE
    applications: tuple[str, ...] = DEFAULT_APPLICATIONS
    service_role: str = "EMR_DefaultRole"
    job_flow_role: str = "EMR_EC2_DefaultRole"
    subnet_ids: tuple[str, ...] = ()
    idle_timeout_seconds: int = 1800
    step_concurrency: int = 10
    action_on_failure: str = "CONTINUE"
    node_labels: bool = True
    python: str = DEFAULT_PYTHON
    bootstrap_actions: tuple[BootstrapAction, ...] = ()
    spark_defaults: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    source: str = "cluster profiles"

    def __post_init__(self) -> None:
        src, path = self.source, f"profiles.{self.name}"
        if not self.release_label.startswith("emr-"):
            raise config_error(src, f"{path}.release_label", f"={self.release_label!r} must look like emr-7.14.0")
        if not self.applications:
            raise config_error(src, f"{path}.applications", "must list at least Spark")
        if not self.python.startswith("/") or any(c.isspace() for c in self.python):
            raise config_error(
                src, f"{path}.python", f"={self.python!r} must be an absolute path such as {DEFAULT_PYTHON}"
            )
        for i, subnet in enumerate(self.subnet_ids):
            if not subnet.startswith("subnet-"):
                raise config_error(src, f"{path}.subnet_ids[{i}]", f"={subnet!r} is not an EC2 subnet id (subnet-…)")
        if not self.log_uri.startswith(("s3://", "s3n://", "{storage_prefix}")):
            raise config_error(src, f"{path}.log_uri", f"={self.log_uri!r} must be an s3:// URI")
        self.master.validate(src, f"{path}.master")
        self.core.validate(src, f"{path}.core")
        if self.task is not None:
            self.task.validate(src, f"{path}.task")
        self.managed_scaling.validate(src, f"{path}.managed_scaling", self.core.on_demand_units)
        check_between(src, f"{path}.idle_timeout_seconds", self.idle_timeout_seconds, *IDLE_TIMEOUT_SECONDS)
        check_between(src, f"{path}.step_concurrency", self.step_concurrency, 1, MAX_STEP_CONCURRENCY)
        check_one_of(src, f"{path}.action_on_failure", self.action_on_failure, ACTIONS_ON_FAILURE)
        if self.step_concurrency > 1 and self.action_on_failure != "CONTINUE":
            raise config_error(
                src,
                f"{path}.action_on_failure",
                f"={self.action_on_failure!r} is not allowed with step_concurrency="
                f"{self.step_concurrency}; EMR only accepts CONTINUE when steps run concurrently",
            )
        for key in self.tags:
            if key.startswith("warpspeed:"):
                raise config_error(src, f"{path}.tags.{key}", "uses the reserved warpspeed: prefix")
        for key, why in spark_defaults_problems(self.spark_defaults).items():
            raise config_error(src, f"{path}.spark_defaults.{key}", why)

    @property
    def python_version(self) -> tuple[int, int] | None:
        """Return the interpreter's version read from its name (``python3.11`` -> ``(3, 11)``), if it says."""
        match = re.search(r"python(\d+)\.(\d+)$", self.python)
        return (int(match.group(1)), int(match.group(2))) if match else None
