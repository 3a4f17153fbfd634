"""The four least-privilege IAM policies: shipped as JSON, shown in docs/iam.md, and the Airflow role's
policy allows every AWS call the provider makes.

The calls are found by scanning the provider's source (the embedded stack aside) for boto3 client
methods of EMR, Glue, S3, SQS, STS and IAM (``client.put_object(...)``, the EMR hook's
``self.call("run_job_flow", ...)``), for the pyiceberg catalog methods that become Glue Data Catalog
calls on a Glue catalog, and the Amazon provider's Glue hook, operator and trigger the Glue task
runs, plus the permissions a call implies (``iam:PassRole`` for RunJobFlow and CreateJob...).
"""

from __future__ import annotations

import ast
import fnmatch
import inspect
import json
import re
import textwrap
from collections.abc import Iterable
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from tests.paths import REPO_ROOT

PROVIDER = REPO_ROOT / "provider" / "warpspeed"
POLICIES = PROVIDER / "config" / "iam"
ROLES = ("airflow_role", "emr_service_role", "emr_instance_profile", "glue_job_role")
SERVICES = {"emr": "elasticmapreduce", "glue": "glue", "s3": "s3", "sqs": "sqs", "sts": "sts", "iam": "iam"}
NOT_RUN_BY_AIRFLOW = ("embedded",)
"""The local stack (moto, ElasticMQ, the REST catalog server) never runs under the Airflow role."""
NOT_AWS = {"get_connection": "Airflow's BaseHook.get_connection", "update_schema": "pyiceberg's Table.update_schema",
           "get_session": "AwsBaseHook.get_session (a boto3 session)"}
ACTION_OF = {
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
}
"""API operations authorised by an IAM action of another name."""
IMPLIED = {
    "elasticmapreduce:RunJobFlow": ["iam:PassRole", "elasticmapreduce:AddTags",
                                    "elasticmapreduce:PutManagedScalingPolicy",
                                    "elasticmapreduce:PutAutoTerminationPolicy",
                                    "iam:CreateServiceLinkedRole"],  # EMR's cleanup role, on the first cluster
    "glue:CreateJob": ["iam:PassRole"],
    "glue:UpdateJob": ["iam:PassRole"],
}
"""Permissions a request needs besides its own action (its role, its tags and policies)."""
PYICEBERG_ON_GLUE = {
    "load_table": ["glue:GetTable"], "table_exists": ["glue:GetTable"], "create_table": ["glue:CreateTable"],
    "create_namespace_if_not_exists": ["glue:CreateDatabase", "glue:GetDatabase"],
    "list_namespaces": ["glue:GetDatabases"], "list_tables": ["glue:GetTables"],
    "overwrite": ["glue:UpdateTable", "s3:PutObject"], "append": ["glue:UpdateTable", "s3:PutObject"],
    "update_schema": ["glue:UpdateTable", "s3:PutObject"], "scan": ["s3:GetObject"],
}
"""pyiceberg catalog/table methods and the calls its Glue catalog and FileIO make for them."""
LIBRARY_ONLY = {
    "GlueJobCompleteTrigger's job_complete waiter": ["glue:GetJobRun"],
    "GlueJobOperator.upload_etl_script_to_s3 (S3Hook.load_file)": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
}
PERMISSION_ONLY = {"iam:PassRole", "iam:CreateServiceLinkedRole", "s3:ListBucket", "s3:GetLifecycleConfiguration",
                   "s3:PutLifecycleConfiguration", "elasticmapreduce:PutManagedScalingPolicy",
                   "elasticmapreduce:PutAutoTerminationPolicy"}


def policy(role: str) -> dict[str, Any]:
    return json.loads((POLICIES / f"{role}.json").read_text(encoding="utf-8"))


def operations() -> dict[str, list[tuple[str, str]]]:
    """Return boto3 method name -> the (service, operation) pairs it names."""
    session = botocore.session.get_session()
    out: dict[str, list[tuple[str, str]]] = {}
    for service in SERVICES:
        for op in session.get_service_model(service).operation_names:
            out.setdefault(xform_name(op), []).append((service, op))
    return out


def action(service: str, op: str) -> str:
    return ACTION_OF.get((service, op), f"{SERVICES[service]}:{op}")


def calls_in(source: str, ops: dict[str, list[tuple[str, str]]], where: str) -> dict[str, set[str]]:
    """Return IAM action -> where, for every AWS call in ``source``."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        if name in ("call", "_pages") and node.args and isinstance(node.args[0], ast.Constant) and isinstance(
                node.args[0].value, str) and node.args[0].value in ops:
            name = node.args[0].value  # the EMR hook's self.call("run_job_flow", ...), self._pages("list_steps", ...)
        for act in PYICEBERG_ON_GLUE.get(name, []):
            found.setdefault(act, set()).add(f"{where} ({name}, pyiceberg)")
        if name in NOT_AWS or name not in ops:
            continue
        for service, op in ops[name]:
            found.setdefault(action(service, op), set()).add(f"{where} ({name})")
    return found


def airflow_calls() -> dict[str, set[str]]:
    """Return every IAM action the code running under the Airflow role needs, with where it is called."""
    from airflow.providers.amazon.aws.hooks.glue import GlueJobHook
    from airflow.providers.amazon.aws.hooks.sts import StsHook
    from airflow.providers.amazon.aws.operators.glue import GlueJobOperator

    ops = operations()
    found: dict[str, set[str]] = {}

    def merge(more: dict[str, set[str]]) -> None:
        for act, where in more.items():
            found.setdefault(act, set()).update(where)

    for path in sorted(PROVIDER.rglob("*.py")):
        rel = path.relative_to(PROVIDER)
        if rel.parts[0] not in NOT_RUN_BY_AIRFLOW:
            merge(calls_in(path.read_text(encoding="utf-8"), ops, str(rel)))
    glue_task = [GlueJobHook.initialize_job, GlueJobHook.create_or_update_glue_job,
                 GlueJobHook.get_or_create_glue_job, GlueJobHook.has_job, GlueJobHook.update_job,
                 GlueJobHook.update_tags, GlueJobHook.create_glue_job_config, GlueJobHook.get_iam_execution_role,
                 GlueJobHook.get_job_state, GlueJobHook.job_completion, StsHook.get_account_number, GlueJobOperator]
    for obj in glue_task:
        merge(calls_in(inspect.getsource(obj), ops, f"amazon provider {obj.__qualname__}"))
    for where, actions in LIBRARY_ONLY.items():
        merge({a: {where} for a in actions})
    for act, more in IMPLIED.items():
        if act in found:
            merge({a: {f"implied by {act}"} for a in more})
    return found


def allowed(document: dict[str, Any]) -> list[str]:
    return [a for s in document["Statement"] if s["Effect"] == "Allow"
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]


def is_allowed(act: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(act.lower(), p.lower()) for p in patterns)


def test_the_airflow_role_allows_every_aws_call_the_provider_makes() -> None:
    calls = airflow_calls()
    expected = {"elasticmapreduce:RunJobFlow", "elasticmapreduce:AddJobFlowSteps", "glue:StartJobRun",
                "glue:CreateJob", "glue:GetTags", "iam:GetRole", "iam:PassRole", "sts:GetCallerIdentity",
                "s3:PutObject", "sqs:ReceiveMessage", "glue:GetTable"}
    assert expected <= set(calls), sorted(expected - set(calls))  # the scan sees what it must see
    patterns = allowed(policy("airflow_role"))
    missing = {act: sorted(where) for act, where in calls.items() if not is_allowed(act, patterns)}
    assert not missing, f"the Airflow role's policy lacks: {json.dumps(missing, indent=1)}"
    unused = [p for p in patterns if not any(fnmatch.fnmatchcase(a.lower(), p.lower()) for a in calls)]
    assert not unused, f"the Airflow role's policy grants actions nothing calls: {unused}"


@pytest.mark.parametrize("role", ROLES)
def test_each_policy_is_a_least_privilege_iam_document(role: str) -> None:
    document = policy(role)
    assert document["Version"] == "2012-10-17"
    session = botocore.session.get_session()
    known = {f"{prefix}:{op}" for svc, prefix in SERVICES.items()
             for op in session.get_service_model(svc).operation_names} | PERMISSION_ONLY
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow" and statement.get("Sid") and statement["Resource"]
        for act in statement["Action"]:
            assert "*" not in act, (role, act)
            if act.split(":")[0] in SERVICES.values():
                assert act in known, (role, act)
        if statement["Resource"] == "*":  # only actions that take no resource, or a condition narrows them
            assert statement.get("Condition") or set(statement["Action"]) <= {
                "elasticmapreduce:ListClusters", "sts:GetCallerIdentity"}, (role, statement["Sid"])


def test_docs_show_the_four_policies_as_shipped() -> None:
    text = (REPO_ROOT / "docs" / "iam.md").read_text(encoding="utf-8")
    for role in ROLES:
        match = re.search(rf"`{role}\.json`[^\n]*\n+```json\n(.*?)\n```", text, re.DOTALL)
        assert match, f"docs/iam.md shows no {role}.json block"
        assert json.loads(match.group(1)) == policy(role), role
    assert "config/iam/*.json" in (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_the_scan_catches_a_call_the_policy_does_not_allow() -> None:
    found = calls_in("def f(s3):\n    s3.delete_bucket(Bucket='b')\n", operations(), "probe")
    assert set(found) == {"s3:DeleteBucket"} and not is_allowed("s3:DeleteBucket", allowed(policy("airflow_role")))
    emr = calls_in("def f(self):\n    self.call('run_job_flow', Name='x')\n", operations(), "probe")
    assert set(emr) == {"elasticmapreduce:RunJobFlow"}
