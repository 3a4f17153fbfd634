"""Bad storage settings fail the collect task with one clear error, before any message leaves the queue.

The real S3 server (S3Proxy) and the real SQS server on loopback: a wrong endpoint, a missing
bucket and bad credentials each give a WarpSpeedConfigError naming the setting, and the request
the producer sent is still in the queue, visible, afterwards.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.paths import REPO_ROOT
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.seed import send_bodies
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.embedded.state import free_port
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.operators.collect import CollectRequestsOperator

if TYPE_CHECKING:
    from tests.conftest import SessionS3

WINDOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
REQUEST = json.dumps({
    "schema_version": 1, "request_id": "req-1", "tenant_id": "tenant-001", "model": "churn_risk",
    "model_version": "v1", "workload": "scoring", "estimated_accounts": 100,
    "requested_at": "2026-11-21T09:59:00+00:00",
})


def _settings(home: Path, sqs: LocalSqs, prefix: str, **s3: str) -> WarpSpeedSettings:
    """Settings whose storage is an S3-compatible server named by catalog properties (as a user's MinIO)."""
    catalog = CatalogConfig(kind="sql", warehouse=(home / "warehouse").as_uri(), sqlite_path=home / "catalog.db",
                            properties={"s3.path-style-access": "true", "s3.region": "us-east-1", **s3})
    return WarpSpeedSettings.from_mapping(
        {"home": str(home), "storage_prefix": prefix, "queue_url": sqs.queue_url,
         "dead_letter_queue_url": sqs.dead_letter_queue_url, "aws_conn_id": "warpspeed_test"},
        catalog=catalog)


def _visible(sqs: LocalSqs) -> tuple[int, int]:
    attrs = sqs.client().get_queue_attributes(
        QueueUrl=sqs.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _collect(settings: WarpSpeedSettings, monkeypatch: pytest.MonkeyPatch, sqs: LocalSqs) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WARPSPEED_TEST", sqs.airflow_connection())
    op = CollectRequestsOperator(task_id="collect", workloads_file=str(REPO_ROOT / "dags/config/workloads.yaml"))
    monkeypatch.setattr(CollectRequestsOperator, "settings", settings)
    op.execute({"logical_date": WINDOW})  # type: ignore[typeddict-item]


@pytest.mark.parametrize("case", ["wrong endpoint", "missing bucket", "bad credentials"])
def test_bad_storage_fails_collect_naming_the_setting_and_leaves_the_queue_alone(
    case: str, tmp_path: Path, s3: SessionS3, sqs: LocalSqs, monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = s3.attach(tmp_path / "owner")  # another state folder's bucket: these settings name it explicitly
    key = server.access("intake")
    good = {"s3.endpoint": s3.endpoint_url, "s3.access-key-id": key.access_key_id or "",
            "s3.secret-access-key": key.secret_access_key or ""}
    prefix, props, expected = {
        "wrong endpoint": (f"s3://{server.bucket}/storage", good | {"s3.endpoint": f"http://127.0.0.1:{free_port()}"},
                           r"S3 cannot be reached .*check catalog property s3\.endpoint='http://127\.0\.0\.1:\d+'"),
        "missing bucket": ("s3://no-such-bucket-here/storage", good,
                           r"bucket 'no-such-bucket-here' does not exist \(NoSuchBucket\): check \[warpspeed\] "
                           r"storage_prefix="),
        "bad credentials": (f"s3://{server.bucket}/storage", good | {"s3.secret-access-key": "not-the-secret"},
                            r"S3 refused the credentials .*SignatureDoesNotMatch.*check catalog properties "
                            r"s3\.access-key-id and s3\.secret-access-key"),
    }[case]
    send_bodies(sqs.client(), sqs.queue_url, [REQUEST])
    with pytest.raises(WarpSpeedConfigError, match=expected):
        _collect(_settings(tmp_path / "home", sqs, prefix, **props), monkeypatch, sqs)
    assert _visible(sqs) == (1, 0)  # nothing was received: the message is still there, visible


def test_good_storage_passes_the_check_with_one_request(tmp_path: Path, s3: SessionS3) -> None:
    server = s3.attach(tmp_path / "owner")
    key = server.access("intake")
    settings = WarpSpeedSettings.from_mapping(
        {"home": str(tmp_path / "home"), "storage_prefix": f"s3://{server.bucket}/storage"},
        catalog=CatalogConfig(kind="sql", warehouse=(tmp_path / "w").as_uri(), sqlite_path=tmp_path / "c.db",
                              properties={"s3.endpoint": s3.endpoint_url, "s3.path-style-access": "true",
                                          "s3.region": "us-east-1", "s3.access-key-id": key.access_key_id or "",
                                          "s3.secret-access-key": key.secret_access_key or ""}))
    storage = settings.storage()
    calls: list[str] = []
    storage.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))  # type: ignore[attr-defined]
    settings.check_storage(storage)
    assert calls == ["ListObjectsV2"]
