"""Cluster profiles: YAML -> validated RunJobFlow request, limits EMR enforces, profile hash."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.paths import REPO_ROOT
from warpspeed.compute.emr.request import build_run_job_flow_request, profile_hash, request_hash
from warpspeed.compute.staging import bootstrap_root
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.cluster_profiles import DEFAULT_RELEASE, TAG_PROFILE_HASH, TAG_WORKLOAD
from warpspeed.config.profile_catalog import ProfileCatalog
from warpspeed.exceptions import WarpSpeedConfigError

PROFILES = REPO_ROOT / "dags" / "config" / "cluster_profiles.yaml"
GLUE = CatalogConfig(kind="glue", warehouse="s3://bkt-wh/warehouse", region="eu-west-1")
VARS = {"storage_prefix": "s3://bkt-ws/warpspeed"}


def doc() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(PROFILES.read_text()))


def build(d: dict[str, Any], profile: str = "scoring", workload: str = "scoring") -> dict[str, Any]:
    return build_run_job_flow_request(
        ProfileCatalog.from_dict(d)[profile], workload, catalog=GLUE, variables=VARS
    )


def conf(request: dict[str, Any], classification: str) -> dict[str, str]:
    return next(c["Properties"] for c in request["Configurations"] if c["Classification"] == classification)


def test_shipped_profiles_build() -> None:
    catalog = ProfileCatalog.load(PROFILES)
    assert set(catalog.names()) >= {"scoring", "maintenance", "preprocessing"}
    for name in catalog.names():
        req = build_run_job_flow_request(catalog[name], name, catalog=GLUE, variables=VARS)
        assert req["ReleaseLabel"] == DEFAULT_RELEASE
        assert req["LogUri"] == "s3://bkt-ws/warpspeed/emr-logs/"


def test_request_shape() -> None:
    req = build(doc())
    fleets = {f["InstanceFleetType"]: f for f in req["Instances"]["InstanceFleets"]}
    assert fleets["MASTER"]["TargetOnDemandCapacity"] == 1 and fleets["MASTER"]["TargetSpotCapacity"] == 0
    assert fleets["CORE"]["TargetSpotCapacity"] == 0 and fleets["CORE"]["TargetOnDemandCapacity"] == 16
    spot = fleets["TASK"]["LaunchSpecifications"]["SpotSpecification"]
    assert spot == {
        "TimeoutDurationMinutes": 10,
        "TimeoutAction": "SWITCH_TO_ON_DEMAND",
        "AllocationStrategy": "price-capacity-optimized",
    }
    assert fleets["TASK"]["TargetOnDemandCapacity"] == 0 and fleets["TASK"]["TargetSpotCapacity"] == 32
    assert {t["WeightedCapacity"] for t in fleets["TASK"]["InstanceTypeConfigs"]} == {8, 16}
    limits = req["ManagedScalingPolicy"]["ComputeLimits"]
    assert limits["MaximumOnDemandCapacityUnits"] == 48 and limits["UnitType"] == "InstanceFleetUnits"
    assert req["AutoTerminationPolicy"] == {"IdleTimeout": 1800}
    assert req["StepConcurrencyLevel"] == 10
    assert req["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True
    # Iceberg on the Glue catalog, node labels pinning AMs on on-demand nodes.
    assert conf(req, "iceberg-defaults") == {"iceberg.enabled": "true"}
    spark = conf(req, "spark-defaults")
    assert spark["spark.sql.catalog.warpspeed.type"] == "glue"
    assert spark["spark.sql.catalog.warpspeed.warehouse"] == "s3://bkt-wh/warehouse"
    assert spark["spark.sql.extensions"].endswith("IcebergSparkSessionExtensions")
    assert conf(req, "yarn-site") == {
        "yarn.node-labels.enabled": "true",
        "yarn.node-labels.am.default-node-label-expression": "ON_DEMAND",
    }
    tags = {t["Key"]: t["Value"] for t in req["Tags"]}
    assert tags[TAG_WORKLOAD] == "scoring" and tags["team"] == "data-platform"
    assert tags[TAG_PROFILE_HASH] == profile_hash(req) == request_hash(req)
    assert req["Name"] == f"warpspeed-scoring-scoring-{tags[TAG_PROFILE_HASH]}"


def test_bootstrap_actions_expand_storage_prefix() -> None:
    req = build(doc(), "preprocessing", "prep")
    (action,) = req["BootstrapActions"]
    assert action["ScriptBootstrapAction"]["Path"] == f"{bootstrap_root('s3://bkt-ws/warpspeed')}/install_python_deps.sh"


def test_hash_changes_with_profile_and_not_with_workload() -> None:
    base = build(doc())
    assert request_hash(build(doc(), workload="intent")) == request_hash(base)
    changed = doc()
    changed["profiles"]["scoring"]["task"]["spot_timeout_minutes"] = 20
    assert request_hash(build(changed)) != request_hash(base)
    changed = doc()
    changed["defaults"]["release_label"] = "emr-7.13.0"
    assert request_hash(build(changed)) != request_hash(base)
    assert request_hash(build(doc())) == request_hash(base)  # deterministic


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("task", "spot_timeout_minutes"), 4, "profiles.scoring.task.spot_timeout_minutes"),
        (("task", "spot_timeout_minutes"), 1441, "profiles.scoring.task.spot_timeout_minutes"),
        (("task", "timeout_action"), "WAIT", "profiles.scoring.task.timeout_action"),
        (("idle_timeout_seconds",), 59, "profiles.scoring.idle_timeout_seconds"),
        (("idle_timeout_seconds",), 604_801, "profiles.scoring.idle_timeout_seconds"),
        (("step_concurrency",), 257, "profiles.scoring.step_concurrency"),
        (("step_concurrency",), 0, "profiles.scoring.step_concurrency"),
        (("action_on_failure",), "TERMINATE_CLUSTER", "profiles.scoring.action_on_failure"),
        (("action_on_failure",), "CANCEL_AND_WAIT", "profiles.scoring.action_on_failure"),
        (
            ("task", "instance_types"),
            [f"m5.{i}xlarge" for i in range(31)],
            "profiles.scoring.task.instance_types",
        ),
        (("task", "instance_types"), [], "profiles.scoring.task.instance_types"),
        (("task", "instance_types"), ["m5.xlarge", "m5.xlarge"], "profiles.scoring.task.instance_types"),
        (("core", "spot_units"), 4, "profiles.scoring.core.spot_units"),
        (("master", "on_demand_units"), 2, "profiles.scoring.master.on_demand_units"),
        (
            ("managed_scaling", "max_on_demand_units"),
            8,
            "profiles.scoring.managed_scaling.max_on_demand_units",
        ),
        (("managed_scaling", "max_units"), 5, "profiles.scoring.managed_scaling.max_units"),
        (("managed_scaling", "unit_type"), "Instances", "profiles.scoring.managed_scaling.unit_type"),
        (("log_uri",), "/tmp/logs", "profiles.scoring.log_uri"),
        (("release_label",), "7.14.0", "profiles.scoring.release_label"),
        (("tags",), {"warpspeed:workload": "x"}, "profiles.scoring.tags.warpspeed:workload"),
        (("bogus",), 1, "profiles.scoring"),
    ],
)
def test_limits_name_the_field(path: tuple[str, ...], value: Any, field: str) -> None:
    d = doc()
    node = d["profiles"]["scoring"]
    if path[0] in ("master",) and "master" not in node:
        node["master"] = copy.deepcopy(d["defaults"]["master"])
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(WarpSpeedConfigError) as err:
        build(d)
    assert field in str(err.value)


def test_single_step_concurrency_allows_terminate() -> None:
    d = doc()
    d["profiles"]["scoring"] |= {"step_concurrency": 1, "action_on_failure": "CANCEL_AND_WAIT"}
    assert build(d)["StepConcurrencyLevel"] == 1


def test_emr_needs_glue_and_s3_logs(tmp_path: Path) -> None:
    profile = ProfileCatalog.load(PROFILES)["scoring"]
    sql = CatalogConfig.embedded(tmp_path)
    with pytest.raises(WarpSpeedConfigError, match="catalog_type"):
        build_run_job_flow_request(profile, "scoring", catalog=sql, variables=VARS)
    with pytest.raises(WarpSpeedConfigError, match=r"profiles\.scoring\.log_uri"):
        build_run_job_flow_request(
            profile, "scoring", catalog=GLUE, variables={"storage_prefix": "file:///tmp/x"}
        )


def test_unknown_profile_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(WarpSpeedConfigError, match="unknown cluster profile 'nope'"):
        ProfileCatalog.load(PROFILES)["nope"]
    bad = tmp_path / "p.yaml"
    bad.write_text("profiles: [")
    with pytest.raises(WarpSpeedConfigError, match="not valid YAML"):
        ProfileCatalog.load(bad)
    with pytest.raises(WarpSpeedConfigError, match="profiles:"):
        ProfileCatalog.from_dict({"profiles": {}})


@pytest.mark.parametrize(("tags", "field"), [
    ({"team": ["a"]}, "profiles.scoring.tags.team must be a string, number or boolean, got ['a']"),
    ({"team": {"name": "a"}}, "profiles.scoring.tags.team must be a string, number or boolean, got {'name': 'a'}"),
    ({"team": None}, "profiles.scoring.tags.team must be a string, number or boolean, got None"),
    (["team"], "profiles.scoring.tags must be a mapping of tag name to value, got list"),
])
def test_a_tag_value_that_is_not_a_scalar_is_refused_naming_file_and_key(
    tmp_path: Path, tags: Any, field: str
) -> None:
    """Issue 27: a list became the tag value "['a']" on every cluster."""
    d = doc()
    d["profiles"]["scoring"]["tags"] = tags
    path = tmp_path / "cluster_profiles.yaml"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(WarpSpeedConfigError) as err:
        ProfileCatalog.load(path)
    assert str(err.value) == f"{path}: {field}"


def test_scalar_tag_values_become_strings() -> None:
    d = doc()
    d["profiles"]["scoring"]["tags"] = {"team": "data", "cost_center": 42, "critical": True}
    tags = ProfileCatalog.from_dict(d)["scoring"].tags
    assert {k: tags[k] for k in ("team", "cost_center", "critical")} == {
        "team": "data", "cost_center": "42", "critical": "True"}
