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

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from warpspeed.catalog import CatalogConfig
from warpspeed.exceptions import WarpSpeedConfigError

DEFAULT_RELEASE = "emr-7.14.0"
DEFAULT_APPLICATIONS = ("Spark", "Hadoop")
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


def _err(source: str, path: str, message: str) -> WarpSpeedConfigError:
    return WarpSpeedConfigError(f"{source}: {path} {message}")


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
            raise _err(source, f"{path}.instance_types", "must list at least one instance type")
        if len(self.instance_types) > MAX_INSTANCE_TYPES_PER_FLEET:
            raise _err(
                source,
                f"{path}.instance_types",
                f"lists {len(self.instance_types)} types; EMR allows at most "
                f"{MAX_INSTANCE_TYPES_PER_FLEET} per fleet",
            )
        names = [t.instance_type for t in self.instance_types]
        if len(set(names)) != len(names):
            raise _err(source, f"{path}.instance_types", f"repeats an instance type: {names}")
        for i, t in enumerate(self.instance_types):
            if not t.instance_type or "." not in t.instance_type:
                raise _err(
                    source, f"{path}.instance_types[{i}].type", f"{t.instance_type!r} is not an EC2 type"
                )
            if not 1 <= t.weighted_capacity <= 1000:
                raise _err(source, f"{path}.instance_types[{i}].weight", "must be between 1 and 1000")
        if self.on_demand_units < 0 or self.spot_units < 0:
            raise _err(source, path, "capacity units must not be negative")
        if self.role == "MASTER":
            if self.on_demand_units + self.spot_units != 1 or self.spot_units:
                raise _err(source, f"{path}.on_demand_units", "must be 1 (one on-demand primary node)")
            if len(self.instance_types) > 5:
                raise _err(
                    source, f"{path}.instance_types", "EMR allows at most 5 types for the primary fleet"
                )
        elif self.role == "CORE":
            if self.spot_units:
                raise _err(
                    source,
                    f"{path}.spot_units",
                    "must be 0: core nodes hold HDFS and the AMs, keep them on-demand",
                )
            if self.on_demand_units < 1:
                raise _err(source, f"{path}.on_demand_units", "must be at least 1")
        if self.spot_units:
            lo, hi = SPOT_TIMEOUT_MINUTES
            if not lo <= self.spot_timeout_minutes <= hi:
                raise _err(
                    source,
                    f"{path}.spot_timeout_minutes",
                    f"={self.spot_timeout_minutes} must be between {lo} and {hi}",
                )
            if self.timeout_action not in TIMEOUT_ACTIONS:
                raise _err(
                    source,
                    f"{path}.timeout_action",
                    f"={self.timeout_action!r} must be one of {', '.join(TIMEOUT_ACTIONS)}",
                )

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
    """Managed scaling limits (``ComputeLimits``)."""

    min_units: int
    max_units: int
    max_on_demand_units: int
    max_core_units: int | None = None
    unit_type: str = "InstanceFleetUnits"

    def validate(self, source: str, path: str, core_units: int) -> None:
        """Check the limits are consistent; raise naming the field."""
        if self.unit_type not in UNIT_TYPES:
            raise _err(
                source,
                f"{path}.unit_type",
                f"={self.unit_type!r} must be one of {', '.join(UNIT_TYPES)} for instance fleets",
            )
        if self.min_units < 1:
            raise _err(source, f"{path}.min_units", "must be at least 1")
        if self.max_units < self.min_units:
            raise _err(source, f"{path}.max_units", f"={self.max_units} is below min_units={self.min_units}")
        if not 0 < self.max_on_demand_units <= self.max_units:
            raise _err(
                source,
                f"{path}.max_on_demand_units",
                f"={self.max_on_demand_units} must be between 1 and max_units={self.max_units}",
            )
        if self.unit_type == "InstanceFleetUnits" and self.max_on_demand_units < core_units:
            raise _err(
                source,
                f"{path}.max_on_demand_units",
                f"={self.max_on_demand_units} is below the core fleet's {core_units} on-demand units",
            )
        if self.max_core_units is not None and not 0 < self.max_core_units <= self.max_units:
            raise _err(source, f"{path}.max_core_units", f"must be between 1 and max_units={self.max_units}")

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
        """Return the ``BootstrapActions`` entry."""
        return {
            "Name": self.name,
            "ScriptBootstrapAction": {
                "Path": _expand(self.path, variables),
                "Args": [_expand(a, variables) for a in self.args],
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
    bootstrap_actions: tuple[BootstrapAction, ...] = ()
    spark_defaults: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    source: str = "cluster profiles"

    def __post_init__(self) -> None:
        src, path = self.source, f"profiles.{self.name}"
        if not self.release_label.startswith("emr-"):
            raise _err(src, f"{path}.release_label", f"={self.release_label!r} must look like emr-7.14.0")
        if not self.applications:
            raise _err(src, f"{path}.applications", "must list at least Spark")
        if not self.log_uri.startswith(("s3://", "s3n://", "{storage_prefix}")):
            raise _err(src, f"{path}.log_uri", f"={self.log_uri!r} must be an s3:// URI")
        self.master.validate(src, f"{path}.master")
        self.core.validate(src, f"{path}.core")
        if self.task is not None:
            self.task.validate(src, f"{path}.task")
        self.managed_scaling.validate(src, f"{path}.managed_scaling", self.core.on_demand_units)
        lo, hi = IDLE_TIMEOUT_SECONDS
        if not lo <= self.idle_timeout_seconds <= hi:
            raise _err(
                src,
                f"{path}.idle_timeout_seconds",
                f"={self.idle_timeout_seconds} must be between {lo} and {hi}",
            )
        if not 1 <= self.step_concurrency <= MAX_STEP_CONCURRENCY:
            raise _err(
                src,
                f"{path}.step_concurrency",
                f"={self.step_concurrency} must be between 1 and {MAX_STEP_CONCURRENCY}",
            )
        if self.action_on_failure not in ACTIONS_ON_FAILURE:
            raise _err(
                src,
                f"{path}.action_on_failure",
                f"={self.action_on_failure!r} must be one of {', '.join(ACTIONS_ON_FAILURE)}",
            )
        if self.step_concurrency > 1 and self.action_on_failure != "CONTINUE":
            raise _err(
                src,
                f"{path}.action_on_failure",
                f"={self.action_on_failure!r} is not allowed with step_concurrency="
                f"{self.step_concurrency}; EMR only accepts CONTINUE when steps run concurrently",
            )
        for key in self.tags:
            if key.startswith("warpspeed:"):
                raise _err(src, f"{path}.tags.{key}", "uses the reserved warpspeed: prefix")


def _expand(text: str, variables: Mapping[str, str]) -> str:
    for key, value in variables.items():
        text = text.replace("{" + key + "}", value.rstrip("/"))
    return text


def _yarn_site(profile: ClusterProfile) -> dict[str, str]:
    if not profile.node_labels:
        return {}
    return {
        "yarn.node-labels.enabled": "true",
        "yarn.node-labels.am.default-node-label-expression": ON_DEMAND_LABEL,
    }


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
    :param variables: values for ``{name}`` placeholders in URIs (e.g. ``storage_prefix``).
    :return: the request; its ``warpspeed:profile-hash`` tag fingerprints everything else.
    """
    if catalog.kind != "glue":
        raise WarpSpeedConfigError(
            f"catalog_type={catalog.kind!r}: EMR clusters need the Glue catalog; set [warpspeed] "
            "catalog_type=glue and an s3:// warehouse"
        )
    variables = dict(variables or {})
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
    spark_defaults = dict(catalog.spark_conf()) | dict(profile.spark_defaults)
    configurations: list[dict[str, Any]] = [
        {"Classification": "iceberg-defaults", "Properties": {"iceberg.enabled": "true"}},
        {"Classification": "spark-defaults", "Properties": dict(sorted(spark_defaults.items()))},
    ]
    if yarn := _yarn_site(profile):
        configurations.append({"Classification": "yarn-site", "Properties": yarn})
    log_uri = _expand(profile.log_uri, variables)
    if not log_uri.startswith(("s3://", "s3n://")):
        raise _err(
            profile.source,
            f"profiles.{profile.name}.log_uri",
            f"expands to {log_uri!r}; EMR needs an s3:// log URI (set [warpspeed] storage_prefix to s3://)",
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
        "BootstrapActions": [b.request(variables) for b in profile.bootstrap_actions],
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


# -- YAML ----------------------------------------------------------------------------------
_PROFILE_KEYS = {
    "release_label",
    "applications",
    "service_role",
    "job_flow_role",
    "subnet_ids",
    "log_uri",
    "master",
    "core",
    "task",
    "managed_scaling",
    "idle_timeout_seconds",
    "step_concurrency",
    "action_on_failure",
    "node_labels",
    "bootstrap_actions",
    "spark_defaults",
    "tags",
    "description",
}
_FLEET_KEYS = {"instance_types", "on_demand_units", "spot_units", "spot_timeout_minutes", "timeout_action"}


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _int(value: Any, source: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _err(source, path, f"must be an integer, got {value!r}")
    return value


def _fleet(raw: Any, role: str, source: str, path: str) -> FleetSpec:
    if not isinstance(raw, Mapping):
        raise _err(source, path, "must be a mapping")
    unknown = set(raw) - _FLEET_KEYS
    if unknown:
        raise _err(source, path, f"has unknown keys {sorted(unknown)}")
    types = []
    for i, item in enumerate(raw.get("instance_types") or ()):
        t = {"type": item} if isinstance(item, str) else item
        if not isinstance(t, Mapping) or "type" not in t:
            raise _err(source, f"{path}.instance_types[{i}]", "must be a type name or {type:, weight:}")
        types.append(
            InstanceType(
                str(t["type"]),
                _int(t.get("weight", 1), source, f"{path}.instance_types[{i}].weight"),
                _int(t["ebs_gib"], source, f"{path}.instance_types[{i}].ebs_gib")
                if t.get("ebs_gib")
                else None,
            )
        )
    return FleetSpec(
        role=role,
        instance_types=tuple(types),
        on_demand_units=_int(
            raw.get("on_demand_units", 1 if role == "MASTER" else 0), source, f"{path}.on_demand_units"
        ),
        spot_units=_int(raw.get("spot_units", 0), source, f"{path}.spot_units"),
        spot_timeout_minutes=_int(
            raw.get("spot_timeout_minutes", 10), source, f"{path}.spot_timeout_minutes"
        ),
        timeout_action=str(raw.get("timeout_action", "SWITCH_TO_ON_DEMAND")),
    )


def profile_from_dict(name: str, spec: Mapping[str, Any], source: str = "cluster profiles") -> ClusterProfile:
    """Build one profile from its (defaults-merged) YAML mapping."""
    path = f"profiles.{name}"
    unknown = set(spec) - _PROFILE_KEYS
    if unknown:
        raise _err(source, path, f"has unknown keys {sorted(unknown)}")
    for required in ("master", "core", "managed_scaling", "log_uri"):
        if required not in spec:
            raise _err(source, f"{path}.{required}", "is required")
    ms = spec["managed_scaling"]
    if not isinstance(ms, Mapping):
        raise _err(source, f"{path}.managed_scaling", "must be a mapping")
    try:
        scaling = ManagedScaling(**ms)
    except TypeError as err:
        raise _err(source, f"{path}.managed_scaling", str(err)) from err
    actions = []
    for i, b in enumerate(spec.get("bootstrap_actions") or ()):
        if not isinstance(b, Mapping) or "path" not in b:
            raise _err(source, f"{path}.bootstrap_actions[{i}]", "needs a path")
        actions.append(
            BootstrapAction(
                str(b.get("name") or f"bootstrap-{i}"),
                str(b["path"]),
                tuple(str(a) for a in b.get("args") or ()),
            )
        )
    return ClusterProfile(
        name=name,
        master=_fleet(spec["master"], "MASTER", source, f"{path}.master"),
        core=_fleet(spec["core"], "CORE", source, f"{path}.core"),
        task=_fleet(spec["task"], "TASK", source, f"{path}.task") if spec.get("task") else None,
        managed_scaling=scaling,
        log_uri=str(spec["log_uri"]),
        release_label=str(spec.get("release_label", DEFAULT_RELEASE)),
        applications=tuple(str(a) for a in spec.get("applications") or DEFAULT_APPLICATIONS),
        service_role=str(spec.get("service_role", "EMR_DefaultRole")),
        job_flow_role=str(spec.get("job_flow_role", "EMR_EC2_DefaultRole")),
        subnet_ids=tuple(str(s) for s in spec.get("subnet_ids") or ()),
        idle_timeout_seconds=_int(
            spec.get("idle_timeout_seconds", 1800), source, f"{path}.idle_timeout_seconds"
        ),
        step_concurrency=_int(spec.get("step_concurrency", 10), source, f"{path}.step_concurrency"),
        action_on_failure=str(spec.get("action_on_failure", "CONTINUE")),
        node_labels=bool(spec.get("node_labels", True)),
        bootstrap_actions=tuple(actions),
        spark_defaults={str(k): str(v) for k, v in (spec.get("spark_defaults") or {}).items()},
        tags={str(k): str(v) for k, v in (spec.get("tags") or {}).items()},
        source=source,
    )


@dataclass(frozen=True)
class ProfileCatalog:
    """Every cluster profile, by name."""

    profiles: Mapping[str, ClusterProfile]

    def __getitem__(self, name: str) -> ClusterProfile:
        try:
            return self.profiles[name]
        except KeyError:
            raise WarpSpeedConfigError(
                f"unknown cluster profile {name!r}; configured: {', '.join(sorted(self.profiles))}"
            ) from None

    def names(self) -> Sequence[str]:
        """Return the profile names, sorted."""
        return sorted(self.profiles)

    @classmethod
    def from_dict(cls, doc: Any, source: str = "cluster profiles") -> ProfileCatalog:
        """Build the catalog from the parsed YAML (``defaults:`` merged under each profile)."""
        if (
            not isinstance(doc, Mapping)
            or not isinstance(doc.get("profiles"), Mapping)
            or not doc["profiles"]
        ):
            raise WarpSpeedConfigError(f"{source}: expected a non-empty 'profiles:' mapping")
        defaults = doc.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise WarpSpeedConfigError(f"{source}: defaults must be a mapping")
        profiles = {}
        for name, spec in doc["profiles"].items():
            if not isinstance(spec, Mapping):
                raise _err(source, f"profiles.{name}", "must be a mapping")
            profiles[str(name)] = profile_from_dict(str(name), _merge(defaults, spec), source)
        return cls(profiles)

    @classmethod
    def load(cls, path: str | Path) -> ProfileCatalog:
        """Read and validate a cluster profiles YAML file."""
        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WarpSpeedConfigError(f"cluster profiles file {path} does not exist") from None
        except yaml.YAMLError as err:
            raise WarpSpeedConfigError(f"cluster profiles file {path} is not valid YAML: {err}") from err
        return cls.from_dict(doc, source=str(path))
