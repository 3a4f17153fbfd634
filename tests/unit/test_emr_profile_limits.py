"""Shipped cluster profiles against what EMR does with them: scaling units, the on-demand retry, the Python
steps' interpreter, subnets, keys."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.paths import BUNDLE_CONFIG, REPO_ROOT
from tests.unit.emr_support import REGION, emr_settings, jobs
from warpspeed.compute.base import SparkJob
from warpspeed.compute.emr.backend import EmrComputeBackend
from warpspeed.compute.emr.request import build_run_job_flow_request
from warpspeed.compute.emr.steps import CodeLocation, spark_step
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.profile_catalog import _PROFILE_KEYS, ProfileCatalog
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.hooks.aws_retry import retry_config
from warpspeed.hooks.emr import EmrPoolHook

PROFILES = BUNDLE_CONFIG / "cluster_profiles.yaml"
GLUE = CatalogConfig(kind="glue", warehouse="s3://bkt-wh/warehouse", region="eu-west-1")
VARS = {"storage_prefix": "s3://bkt-ws/warpspeed"}
LABEL_KEYS = ("spark.yarn.executor.nodeLabelExpression", "spark.yarn.am.nodeLabelExpression")

pytestmark = pytest.mark.usefixtures("aws_env")


def doc() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(PROFILES.read_text(encoding="utf-8")))


def test_shipped_scaling_limits_count_core_and_task_units_only() -> None:
    """EMR's ComputeLimits never count the primary node: a floor above the core units keeps extra nodes."""
    profiles = ProfileCatalog.load(PROFILES)
    for name in profiles.names():
        profile = profiles[name]
        core = profile.core.on_demand_units
        task = profile.task.spot_units + profile.task.on_demand_units if profile.task else 0
        scaling = profile.managed_scaling
        assert scaling.min_units == core, (name, scaling.min_units, core)
        assert scaling.max_on_demand_units % 8 == 0 and scaling.max_units % 8 == 0, (name, scaling)
        assert scaling.max_on_demand_units <= core + task, (name, scaling.max_on_demand_units, core + task)
    scoring = profiles["scoring"].managed_scaling.request()["ComputeLimits"]
    assert scoring == {"UnitType": "InstanceFleetUnits", "MinimumCapacityUnits": 16, "MaximumCapacityUnits": 256,
                       "MaximumOnDemandCapacityUnits": 48, "MaximumCoreCapacityUnits": 32}


def test_a_scaling_floor_above_the_core_units_is_refused_naming_the_field() -> None:
    d = doc()
    d["profiles"]["scoring"]["managed_scaling"]["min_units"] = 17
    with pytest.raises(WarpSpeedConfigError, match=r"profiles\.scoring\.managed_scaling\.min_units.*core"):
        ProfileCatalog.from_dict(d)


def _profiles_file(tmp_path: Path, node_labels: bool, **defaults: Any) -> Path:
    d = doc()
    d["defaults"] |= {"node_labels": node_labels, **defaults}
    path = tmp_path / "cluster_profiles.yaml"
    path.write_text(yaml.safe_dump(d), encoding="utf-8")
    return path


def _backend(tmp_path: Path, node_labels: bool = True, **defaults: Any) -> EmrComputeBackend:
    """Return an EMR backend (moto) on the shipped profiles with ``defaults`` changed."""
    hook = EmrPoolHook(client=boto3.client("emr", region_name=REGION, config=retry_config()), sleep=lambda _s: None)
    return EmrComputeBackend(emr_settings(tmp_path), profiles_file=_profiles_file(tmp_path, node_labels, **defaults),
                             hook=hook, s3_client=boto3.client("s3", region_name=REGION))


@pytest.mark.parametrize("node_labels", [True, False])
def test_the_on_demand_retry_names_a_node_label_only_where_yarn_has_labels(tmp_path: Path, node_labels: bool) -> None:
    """With node_labels: false YARN has no ON_DEMAND label and rejects a request for it: no label expression."""
    backend = _backend(tmp_path, node_labels)
    ref = backend.ensure_cluster_for("scoring", "scoring", 1)
    request = backend.request_for("scoring", "scoring")
    assert any(c["Classification"] == "yarn-site" for c in request["Configurations"]) is node_labels
    (retry,) = backend.steps_for(ref, jobs(1), on_demand_only=True)
    args = retry["HadoopJarStep"]["Args"]
    assert retry["Name"].endswith("#on-demand")
    for key in LABEL_KEYS:
        assert (f"{key}=ON_DEMAND" in args) is node_labels, args
    (first,) = backend.steps_for(ref, jobs(1))
    assert not any("nodeLabelExpression" in a for a in first["HadoopJarStep"]["Args"])
    plain = spark_step(jobs(1)[0], CodeLocation("s3://b/c"), on_demand_only=True, node_labels=False)
    assert not any("nodeLabelExpression" in a for a in plain["HadoopJarStep"]["Args"])


def test_python_steps_on_a_cluster_run_the_interpreter_its_profile_names(tmp_path: Path) -> None:
    """Item 4: the primary node's Python steps ran bare python3; they run the cluster profile's ``python``."""
    backend = _backend(tmp_path, python="/opt/warpspeed/bin/python3.12")
    ref = backend.ensure_cluster_for("scoring", "scoring", 1)
    small = SparkJob("warpspeed-a1", "score_arrow.py", ("--batch-manifest", "s3://b/m.json"), engine="arrow")
    for step in (*backend.steps_for(ref, [small]), *backend.steps_for(ref, [small], on_demand_only=True)):
        command = shlex.split(step["HadoopJarStep"]["Args"][2].split("; ")[-1])
        assert command[1:4] == ["/opt/warpspeed/bin/python3.12", "-m", "spark_jobs.score_arrow"], command


def test_subnets_spread_the_fleets_and_are_documented() -> None:
    assert re.search(r"^\s*#\s*subnet_ids: \[subnet-", PROFILES.read_text(encoding="utf-8"), re.MULTILINE)
    d = doc()
    d["defaults"]["subnet_ids"] = ["subnet-0aaa", "subnet-0bbb"]
    profile = ProfileCatalog.from_dict(d)["scoring"]
    req = build_run_job_flow_request(profile, "scoring", catalog=GLUE, variables=VARS)
    assert req["Instances"]["Ec2SubnetIds"] == ["subnet-0aaa", "subnet-0bbb"]
    for bad, field in (("subnet-0aaa", "subnet_ids"), (["sg-123"], "subnet_ids[0]")):
        d["defaults"]["subnet_ids"] = bad
        with pytest.raises(WarpSpeedConfigError, match=rf"profiles\.scoring\.{re.escape(field)}"):
            ProfileCatalog.from_dict(d)


def test_docs_key_table_lists_every_profile_key() -> None:
    text = (REPO_ROOT / "docs" / "emr.md").read_text(encoding="utf-8")
    table = text[text.index("| key | meaning |"):]
    table = table[: table.index("\n\n")]
    documented = set(re.findall(r"^\| `([a-z_]+)`", table, re.MULTILINE)) | set(
        re.findall(r"^\| `[a-z_]+`, `([a-z_]+)`", table, re.MULTILINE))
    assert _PROFILE_KEYS - {"description"} <= documented, sorted(_PROFILE_KEYS - documented)
