"""Every AWS request the code sends, built from the shipped config, passes botocore's model check.

botocore's ``ParamValidator`` checks a request against the service model (required members,
types, enums, ranges): what AWS would refuse with a ValidationException before doing anything.
The EMR calls are recorded from a whole window run through the backend (moto in-process) and
from building every shipped profile's cluster; Glue's from the operator configured with the
shipped preprocessing config and both catalog kinds; S3's lifecycle from the shipped rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator

from tests.glue_support import GLUE_CATALOG, S3_TABLES, operator, settings
from tests.paths import BUNDLE_CONFIG
from tests.unit.emr_support import BUCKET, REGION, finish_steps, make_backend
from warpspeed.compute.base import SparkJob
from warpspeed.compute.emr.request import build_run_job_flow_request
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.glue_job import BUILD_SCRIPT, GlueJobSettings
from warpspeed.config.lifecycle import load_rules, merge_rules, rules_by_bucket
from warpspeed.config.profile_catalog import ProfileCatalog
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.hooks.glue import ConcurrencyAwareGlueJobHook
from warpspeed.maintenance.service import MAINTENANCE_SCRIPT

SESSION = botocore.session.get_session()
PROFILES = BUNDLE_CONFIG / "cluster_profiles.yaml"

pytestmark = pytest.mark.usefixtures("aws_env")


def problems(service: str, operation: str, params: Mapping[str, Any]) -> str:
    """Return botocore's report of what is wrong with the request (empty when it is valid)."""
    shape = SESSION.get_service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(dict(params), shape)
    return report.generate_report() if report.has_errors() else ""


def assert_valid(service: str, operation: str, params: Mapping[str, Any]) -> None:
    report = problems(service, operation, params)
    assert not report, f"{service}:{operation}\n{report}"


def test_the_check_itself_catches_a_bad_request() -> None:
    good = build_run_job_flow_request(ProfileCatalog.load(PROFILES)["scoring"], "scoring", catalog=GLUE_CATALOG,
                                      variables={"storage_prefix": "s3://b/w"})
    assert_valid("emr", "RunJobFlow", good)
    bad = dict(good, StepConcurrencyLevel="10", Instances=dict(good["Instances"], InstanceFleets=[{}]))
    assert "StepConcurrencyLevel" in problems("emr", "RunJobFlow", bad)
    assert "InstanceFleetType" in problems("emr", "RunJobFlow", bad)


@pytest.mark.parametrize("catalog", [GLUE_CATALOG, S3_TABLES], ids=["glue", "s3tables"])
def test_every_shipped_profile_request_and_its_scaling_policy(catalog: CatalogConfig) -> None:
    profiles = ProfileCatalog.load(PROFILES)
    for name in profiles.names():
        if catalog.kind != "glue":
            continue  # the EMR backend registers the Glue catalog only (refused with the fix otherwise)
        request = build_run_job_flow_request(profiles[name], name, catalog=catalog,
                                             variables={"storage_prefix": "s3://b/w"})
        assert_valid("emr", "RunJobFlow", request)
        # what `aws emr put-managed-scaling-policy` takes to change a running cluster's limits
        assert_valid("emr", "PutManagedScalingPolicy",
                     {"ClusterId": "j-1", "ManagedScalingPolicy": request["ManagedScalingPolicy"]})


def _window_jobs() -> list[SparkJob]:
    """Every kind of job the backends run: a Spark batch, a small (arrow) batch, maintenance, features."""
    args = ("--batch-manifest", f"s3://{BUCKET}/m/1.json", "--catalog", "warpspeed")
    return [
        SparkJob("warpspeed-b1", "score_batch.py", args),
        SparkJob("warpspeed-a1", "score_arrow.py", args, engine="arrow"),
        SparkJob("warpspeed-maintenance-scores-r1", MAINTENANCE_SCRIPT,
                 ("--plan", f"s3://{BUCKET}/p.json", "--result", f"s3://{BUCKET}/r.json", "--catalog", "warpspeed")),
        SparkJob("build_features-x-r1", BUILD_SCRIPT, ("--plan-uri", f"s3://{BUCKET}/plan.json"),
                 conf={"spark.sql.shuffle.partitions": "8"}),
    ]


def test_every_emr_call_of_a_window_on_every_workload_profile(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    sent: list[tuple[str, dict[str, Any]]] = []
    backend.hook.emr.meta.events.register(
        "provide-client-params.emr", lambda params, model, **_: sent.append((model.name, dict(params))))
    workloads = WorkloadCatalog.load(BUNDLE_CONFIG / "workloads.yaml", PROFILES)
    needs = {name: (workloads[name].profile, _window_jobs()) for name in workloads.workloads}
    needs["maintenance"] = ("maintenance", _window_jobs()[2:3])
    needs["preprocessing"] = ("preprocessing", _window_jobs()[3:])
    refs = backend.ensure_clusters(needs)
    for workload, ref in refs.items():
        statuses = backend.start(ref, needs[workload][1])  # adopted: launched with the cluster
        finish_steps(ref.cluster_id, default="INTERRUPTED")
        backend.wait(ref, [s.step_id for s in statuses])
        retried = backend.start(ref, needs[workload][1], on_demand_only=True)
        with contextlib.suppress(NotImplementedError):  # moto has no CancelSteps; the request is recorded
            backend.cancel(ref, [s.step_id for s in retried])
    backend.hook.call("terminate_job_flows", JobFlowIds=[r.cluster_id for r in refs.values()])
    names = {name for name, _ in sent}
    assert {"ListClusters", "RunJobFlow", "ListSteps", "AddJobFlowSteps", "CancelSteps",
            "TerminateJobFlows"} <= names, names
    for name, params in sent:
        assert_valid("emr", name, params)


@pytest.mark.parametrize("catalog", [GLUE_CATALOG, S3_TABLES], ids=["glue", "s3tables"])
def test_every_glue_request_of_the_preprocessing_task(tmp_path: Path, catalog: CatalogConfig) -> None:
    shipped = GlueJobSettings.load(BUNDLE_CONFIG / "preprocessing.yaml")
    glue = replace(shipped, script_bucket="bucket", iam_role_arn="arn:aws:iam::123456789012:role/glue",
                   iam_role_name=None)
    op = operator(BUNDLE_CONFIG / "preprocessing.yaml", settings(catalog, tmp_path))
    op.configure(glue, op.settings)
    op.s3_script_location = f"s3://bucket/{glue.scripts_prefix}/{BUILD_SCRIPT}"  # as after the upload
    hook = ConcurrencyAwareGlueJobHook(**op._hook_parameters)
    config = hook.create_glue_job_config()
    assert_valid("glue", "CreateJob", config)
    update = {k: v for k, v in config.items() if k not in ("Name", "Tags")}
    assert_valid("glue", "UpdateJob", {"JobName": config["Name"], "JobUpdate": update})
    assert_valid("glue", "StartJobRun", {"JobName": op.job_name, "Arguments": op.script_args, **op.run_job_kwargs})
    assert_valid("glue", "GetJobRun", {"JobName": op.job_name, "RunId": "jr_1", "PredecessorsIncluded": True})
    assert_valid("glue", "GetJobRuns", {"JobName": op.job_name, "MaxResults": 200})
    assert_valid("glue", "BatchStopJobRun", {"JobName": op.job_name, "JobRunIds": ["jr_1"]})
    arn = f"arn:aws:glue:{REGION}:123456789012:job/{op.job_name}"
    assert_valid("glue", "GetTags", {"ResourceArn": arn})
    assert_valid("glue", "TagResource", {"ResourceArn": arn, "TagsToAdd": config["Tags"]})


def test_the_shipped_lifecycle_rules_merged_into_a_bucket(tmp_path: Path) -> None:
    rules = load_rules(BUNDLE_CONFIG / "s3_lifecycle.yaml")
    for bucket, managed in rules_by_bucket(rules, f"s3://{BUCKET}/warpspeed", [f"s3://{BUCKET}/warehouse"]).items():
        foreign = [{"ID": "team-archive", "Status": "Enabled", "Filter": {"Prefix": "archive/"},
                    "Expiration": {"Days": 9}}]
        merged = merge_rules(foreign, managed)
        assert_valid("s3", "PutBucketLifecycleConfiguration", {
            "Bucket": bucket, "LifecycleConfiguration": {"Rules": merged},
            "TransitionDefaultMinimumObjectSize": "varies_by_storage_class"})
    boto3.client("s3", region_name=REGION)  # the moto fixture is active: nothing above talked to AWS
