"""S3 lifecycle rules applied to a moto S3 bucket; rules over table prefixes are refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.paths import REPO_ROOT
from warpspeed.config.lifecycle import LifecycleRule, Transition, check_rules, load_rules
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.hooks.s3 import S3LifecycleHook

RULES_FILE = REPO_ROOT / "dags" / "config" / "s3_lifecycle.yaml"
PREFIX = "s3://ws-bucket/warpspeed"
PROTECTED = ["s3://ws-bucket/warehouse", "s3://ws-bucket/warehouse/scores/account_scores"]


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        client.create_bucket(Bucket="ws-bucket")
        yield client


def test_shipped_rules_cover_manifests_maintenance_documents_and_logs() -> None:
    rules = {r.id: r for r in load_rules(RULES_FILE)}
    assert set(rules) == {"warpspeed-window-manifests", "warpspeed-maintenance-documents", "warpspeed-logs"}
    assert rules["warpspeed-window-manifests"].location(PREFIX) == ("ws-bucket", "warpspeed/windows/")
    s3_rule = rules["warpspeed-window-manifests"].to_s3(PREFIX)
    assert s3_rule["Filter"] == {"Prefix": "warpspeed/windows/"}
    assert s3_rule["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert s3_rule["Expiration"] == {"Days": 180}


def test_apply_merges_into_the_bucket_and_keeps_foreign_rules(s3: Any) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket="ws-bucket", LifecycleConfiguration={"Rules": [
        {"ID": "team-archive", "Status": "Enabled", "Filter": {"Prefix": "archive/"},
         "Expiration": {"Days": 9}},
        {"ID": "warpspeed-old-rule", "Status": "Enabled", "Filter": {"Prefix": "old/"},
         "Expiration": {"Days": 1}},
    ]})
    hook = S3LifecycleHook(client=s3)
    applied = hook.apply(load_rules(RULES_FILE), PREFIX, PROTECTED)
    assert applied == {"ws-bucket": ["warpspeed-window-manifests", "warpspeed-maintenance-documents",
                                     "warpspeed-logs"]}
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket="ws-bucket")["Rules"]}
    assert set(rules) == {"team-archive", "warpspeed-window-manifests", "warpspeed-maintenance-documents",
                          "warpspeed-logs"}
    assert rules["warpspeed-logs"]["Expiration"]["Days"] == 30
    # applying again is idempotent
    hook.apply(load_rules(RULES_FILE), PREFIX, PROTECTED)
    assert len(s3.get_bucket_lifecycle_configuration(Bucket="ws-bucket")["Rules"]) == 4


@pytest.mark.parametrize(
    "prefix",
    ["s3://ws-bucket/warehouse/scores/account_scores/metadata/", "s3://ws-bucket/ware",
     "s3://ws-bucket/", "s3://ws-bucket/warehouse/scores/account_scores/data/tenant_id=t1/"],
)
def test_rules_over_table_data_or_metadata_are_refused(s3: Any, prefix: str) -> None:
    bad = LifecycleRule("warpspeed-oops", prefix, expiration_days=1)
    hook = S3LifecycleHook(client=s3)
    with pytest.raises(WarpSpeedConfigError, match="warpspeed-oops"):
        hook.apply([*load_rules(RULES_FILE), bad], PREFIX, PROTECTED)
    # nothing was written
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket="ws-bucket")


def test_neighbouring_prefixes_and_other_buckets_are_allowed(s3: Any) -> None:
    ok = [LifecycleRule("warpspeed-a", "s3://ws-bucket/warehouse-exports/", expiration_days=3),
          LifecycleRule("warpspeed-b", "s3://other/warehouse/", expiration_days=3)]
    assert check_rules(ok, PREFIX, PROTECTED) is None  # refusing raises
    s3.create_bucket(Bucket="other")
    applied = S3LifecycleHook(client=s3).apply(ok, PREFIX, PROTECTED)
    assert applied == {"ws-bucket": ["warpspeed-a"], "other": ["warpspeed-b"]}
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket="ws-bucket")["Rules"]
    assert rule["Filter"] == {"Prefix": "warehouse-exports/"}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"id": "mine", "prefix": "x/", "expiration_days": 3}, "must start with 'warpspeed-'"),
        ({"id": "warpspeed-x", "prefix": "x/"}, "neither expires nor transitions"),
        ({"id": "warpspeed-x", "prefix": "x/", "expiration_days": 20,
          "transitions": (Transition(30, "STANDARD_IA"),)}, "not before expiration"),
    ],
)
def test_invalid_rules_name_the_field(kwargs: dict, needle: str) -> None:
    with pytest.raises(WarpSpeedConfigError, match=needle):
        LifecycleRule(**kwargs)


def test_transition_minimums_and_local_prefixes(tmp_path: Path) -> None:
    with pytest.raises(WarpSpeedConfigError, match="at least 30 days"):
        Transition(7, "STANDARD_IA")
    rule = LifecycleRule("warpspeed-x", "logs/", expiration_days=3)
    with pytest.raises(WarpSpeedConfigError, match="s3://"):
        rule.location(tmp_path.as_uri())


def test_the_rules_moved_out_of_the_hook_and_its_old_names_still_forward() -> None:
    import warpspeed.hooks.s3 as hook_module

    with pytest.warns(DeprecationWarning, match="warpspeed.config.lifecycle"):
        assert hook_module.load_rules is load_rules  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        hook_module.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_a_server_without_bucket_lifecycle_skips_the_task_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """S3Proxy (the embedded stack's S3) answers NotImplemented: the task skips, naming the prefix."""
    from airflow.sdk.exceptions import AirflowSkipException
    from botocore.exceptions import ClientError

    from warpspeed.config.settings import WarpSpeedSettings
    from warpspeed.operators.lifecycle import ApplyS3LifecycleOperator

    def not_implemented(*_: Any) -> dict[str, list[str]]:
        raise ClientError({"Error": {"Code": "NotImplemented", "Message": "not implemented"}},
                          "GetBucketLifecycleConfiguration")

    op = ApplyS3LifecycleOperator(task_id="lifecycle", rules_file=str(RULES_FILE))
    settings = WarpSpeedSettings.from_mapping({"storage_prefix": PREFIX})
    monkeypatch.setattr(ApplyS3LifecycleOperator, "settings", settings)
    monkeypatch.setattr(ApplyS3LifecycleOperator, "hook", S3LifecycleHook(client=object()))
    monkeypatch.setattr(S3LifecycleHook, "apply", not_implemented)
    monkeypatch.setattr(ApplyS3LifecycleOperator, "protected", lambda self: PROTECTED)
    with pytest.raises(AirflowSkipException, match="s3://ws-bucket/warpspeed does not implement bucket lifecycle"):
        op.execute({})  # type: ignore[arg-type]
