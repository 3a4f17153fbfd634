"""S3 document storage against moto's S3 on the loopback server."""

from __future__ import annotations

import boto3
import pytest

from warpspeed.storage.documents import S3Storage, storage_for


def test_s3_storage_against_the_loopback_server(moto_endpoint: str) -> None:
    def client() -> object:
        return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                            aws_access_key_id="k", aws_secret_access_key="s")

    client().create_bucket(Bucket="warpspeed-test")
    store = storage_for("s3://warpspeed-test/ws", client)
    assert isinstance(store, S3Storage)
    store.write_text("s3://warpspeed-test/ws/windows/w/intake.json", "{}")
    assert store.read_text("s3://warpspeed-test/ws/windows/w/intake.json") == "{}"
    assert store.exists("s3://warpspeed-test/ws/windows/w/intake.json")
    assert not store.exists("s3://warpspeed-test/ws/windows/w/intake")
    assert store.list("s3://warpspeed-test/ws/windows") == ["s3://warpspeed-test/ws/windows/w/intake.json"]
    with pytest.raises(FileNotFoundError):
        store.read_text("s3://warpspeed-test/ws/missing.json")
