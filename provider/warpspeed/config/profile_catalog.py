"""Read cluster profiles from the DAG bundle's ``config/cluster_profiles.yaml`` (``defaults:`` merged in)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warpspeed.config.cluster_profiles import (
    DEFAULT_APPLICATIONS,
    DEFAULT_PYTHON,
    DEFAULT_RELEASE,
    BootstrapAction,
    ClusterProfile,
    FleetSpec,
    InstanceType,
    ManagedScaling,
    config_error,
)
from warpspeed.config.fields import named
from warpspeed.config.yaml_file import read_mapping
from warpspeed.exceptions import WarpSpeedConfigError

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
    "python",
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
        raise config_error(source, path, f"must be an integer, got {value!r}")
    return value


def _tags(raw: Any, source: str, path: str) -> dict[str, str]:
    """Return the profile's EMR tags as strings; a value must be a scalar (``[a]`` is not the tag ``"['a']"``)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise config_error(source, path, f"must be a mapping of tag name to value, got {type(raw).__name__}")
    for key, value in raw.items():
        if not isinstance(value, str | int | float | bool):
            raise config_error(source, f"{path}.{key}", f"must be a string, number or boolean, got {value!r}")
    return {str(k): str(v) for k, v in raw.items()}


def _fleet(raw: Any, role: str, source: str, path: str) -> FleetSpec:
    if not isinstance(raw, Mapping):
        raise config_error(source, path, "must be a mapping")
    unknown = set(raw) - _FLEET_KEYS
    if unknown:
        raise config_error(source, path, f"has unknown keys {sorted(unknown)}")
    types = []
    for i, item in enumerate(raw.get("instance_types") or ()):
        t = {"type": item} if isinstance(item, str) else item
        if not isinstance(t, Mapping) or "type" not in t:
            raise config_error(source, f"{path}.instance_types[{i}]", "must be a type name or {type:, weight:}")
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
        raise config_error(source, path, f"has unknown keys {sorted(unknown)}")
    for required in ("master", "core", "managed_scaling", "log_uri"):
        if required not in spec:
            raise config_error(source, f"{path}.{required}", "is required")
    ms = spec["managed_scaling"]
    if not isinstance(ms, Mapping):
        raise config_error(source, f"{path}.managed_scaling", "must be a mapping")
    try:
        scaling = ManagedScaling(**ms)
    except TypeError as err:
        raise config_error(source, f"{path}.managed_scaling", str(err)) from err
    subnets = spec.get("subnet_ids") or ()
    if not isinstance(subnets, Sequence) or isinstance(subnets, str):
        raise config_error(source, f"{path}.subnet_ids", f"must be a list of subnet ids, got {subnets!r}")
    actions = []
    for i, b in enumerate(spec.get("bootstrap_actions") or ()):
        if not isinstance(b, Mapping) or "path" not in b:
            raise config_error(source, f"{path}.bootstrap_actions[{i}]", "needs a path")
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
        subnet_ids=tuple(str(s) for s in subnets),
        idle_timeout_seconds=_int(
            spec.get("idle_timeout_seconds", 1800), source, f"{path}.idle_timeout_seconds"
        ),
        step_concurrency=_int(spec.get("step_concurrency", 10), source, f"{path}.step_concurrency"),
        action_on_failure=str(spec.get("action_on_failure", "CONTINUE")),
        node_labels=bool(spec.get("node_labels", True)),
        python=str(spec.get("python", DEFAULT_PYTHON)),
        bootstrap_actions=tuple(actions),
        spark_defaults={str(k): str(v) for k, v in (spec.get("spark_defaults") or {}).items()},
        tags=_tags(spec.get("tags"), source, f"{path}.tags"),
        source=source,
    )


@dataclass(frozen=True)
class ProfileCatalog:
    """Every cluster profile, by name."""

    profiles: Mapping[str, ClusterProfile]

    def __getitem__(self, name: str) -> ClusterProfile:
        return named(self.profiles, name, f"unknown cluster profile {name!r}")

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
                raise config_error(source, f"profiles.{name}", "must be a mapping")
            profiles[str(name)] = profile_from_dict(str(name), _merge(defaults, spec), source)
        return cls(profiles)

    @classmethod
    def load(cls, path: str | Path) -> ProfileCatalog:
        """Read and validate a cluster profiles YAML file."""
        return cls.from_dict(read_mapping(path, "cluster profiles"), source=str(path))
