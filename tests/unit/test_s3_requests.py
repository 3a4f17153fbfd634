"""S3 requests: naming each request, attributing it to a component and a window, pricing it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from warpspeed.config.s3 import S3Access
from warpspeed.embedded.s3_relay import access_key_of, classify
from warpspeed.ledger.prices import PriceTable, S3Prices
from warpspeed.ledger.s3_requests import (
    count_requests,
    get_head,
    per_window,
    read_request_log,
    request_class,
    requests_cost,
    window_rows,
)


@pytest.mark.parametrize(("method", "target", "headers", "operation"), [
    ("GET", "/b/k/x.parquet", {}, "GetObject"),
    ("GET", "/b/k/x.parquet", {"range": "bytes=0-9"}, "GetObjectRange"),
    ("HEAD", "/b/k/x.parquet", {}, "HeadObject"),
    ("PUT", "/b/k/x.json", {}, "PutObject"),
    ("PUT", "/b/k/x.json", {"x-amz-copy-source": "/b/k/y"}, "CopyObject"),
    ("PUT", "/b/k/x?partNumber=1&uploadId=u", {}, "UploadPart"),
    ("POST", "/b/k/x?uploads", {}, "CreateMultipartUpload"),
    ("POST", "/b/k/x?uploadId=u", {}, "CompleteMultipartUpload"),
    ("DELETE", "/b/k/x?uploadId=u", {}, "AbortMultipartUpload"),
    ("DELETE", "/b/k/x", {}, "DeleteObject"),
    ("POST", "/b?delete", {}, "DeleteObjects"),
    ("GET", "/b?list-type=2&prefix=storage%2F", {}, "ListObjectsV2"),
    ("HEAD", "/b", {}, "HeadBucket"),
    ("GET", "/", {}, "ListBuckets"),
])
def test_a_path_style_request_is_named_by_its_s3_operation(method: str, target: str, headers: dict,
                                                           operation: str) -> None:
    assert classify(method, target, headers)[0] == operation


def test_the_signing_key_says_who_made_the_request() -> None:
    sigv4 = {"authorization": "AWS4-HMAC-SHA256 Credential=WSSCORE0A1B/20261204/us-east-1/s3/aws4_request, "
                              "SignedHeaders=host, Signature=ab"}
    assert access_key_of(sigv4, "/b/k") == "WSSCORE0A1B"
    assert access_key_of({}, "/b/k?X-Amz-Credential=WSPLAN9%2F20261204%2Fus-east-1%2Fs3%2Faws4_request") == "WSPLAN9"
    assert access_key_of({}, "/b/k") == "-"


def test_requests_are_priced_by_s3_request_class() -> None:
    prices = S3Prices(put_per_1000=0.005, get_per_1000=0.0004)
    assert [request_class(op) for op in ("PutObject", "ListObjectsV2", "UploadPart", "HeadObject", "GetObjectRange",
                                         "DeleteObjects")] == ["put", "put", "put", "get", "get", "free"]
    assert requests_cost({"PutObject": 1000, "GetObject": 2000, "DeleteObject": 5000}, prices) == pytest.approx(
        0.005 + 0.0008)
    assert PriceTable.load().s3.source.startswith("https://aws.amazon.com/s3/pricing/")


def test_a_window_gets_its_components_requests_of_its_span(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    records = [(100.0, "intake", "PutObject"), (101.0, "score", "GetObjectRange"), (101.5, "score", "HeadObject"),
               (102.0, "stack", "GetObject"), (103.0, "maintenance", "GetObject"), (200.0, "plan", "PutObject")]
    log.write_text("".join(json.dumps({"t": t, "component": c, "op": op, "status": 200}) + "\n"
                           for t, c, op in records) + '{"t": 150, "compo')  # a line cut by a crash
    counts = count_requests(read_request_log(log, 100.0, 150.0))
    assert counts == {("intake", "PutObject"): 1, ("score", "GetObjectRange"): 1, ("score", "HeadObject"): 1}
    assert get_head(counts) == 2
    assert sum(count_requests(read_request_log(log), components=None).values()) == 6
    start = datetime(2026, 12, 4, 10, tzinfo=UTC)
    rows = window_rows("w1", start, counts, S3Prices(), span=(start, start))
    assert {(r.component, r.operation, r.request_class, r.requests) for r in rows} == {
        ("intake", "PutObject", "put", 1), ("score", "GetObjectRange", "get", 1), ("score", "HeadObject", "get", 1)}
    assert per_window([r.__dict__ for r in rows])["w1"][:2] == (3, 2)


def test_one_s3_access_configures_every_client_alike() -> None:
    access = S3Access.from_properties({
        "s3.endpoint": "http://127.0.0.1:9000", "s3.path-style-access": "true", "s3.region": "us-east-1",
        "s3.access-key-id": "AK", "s3.secret-access-key": "SK"})
    assert access.catalog_properties() == {
        "s3.endpoint": "http://127.0.0.1:9000", "s3.path-style-access": "true", "s3.force-virtual-addressing": "false",
        "s3.region": "us-east-1", "client.region": "us-east-1", "s3.access-key-id": "AK", "s3.secret-access-key": "SK"}
    hadoop = access.hadoop_conf()
    assert hadoop["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert (hadoop["spark.hadoop.fs.s3a.endpoint"], hadoop["spark.hadoop.fs.s3a.path.style.access"],
            hadoop["spark.hadoop.fs.s3a.access.key"]) == ("http://127.0.0.1:9000", "true", "AK")
    assert S3Access().is_aws and S3Access().hadoop_conf() == {} and S3Access().catalog_properties() == {}
    assert "SK" not in repr(access)
