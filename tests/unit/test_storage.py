from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.storage.documents import LocalStorage, S3Storage, join_uri, storage_for


def test_join_uri_never_doubles_slashes() -> None:
    assert join_uri("s3://b/p/", "/windows/", "x.json") == "s3://b/p/windows/x.json"


def test_local_storage_writes_atomically_and_lists(tmp_path: Path) -> None:
    store = storage_for(tmp_path.as_uri())
    assert isinstance(store, LocalStorage)
    uri = join_uri(tmp_path.as_uri(), "a", "doc.json")
    store.write_text(uri, "one")
    store.write_text(uri, "two")
    assert store.read_text(uri) == "two"
    assert store.exists(uri) and not store.exists(uri + ".missing")
    assert store.list(join_uri(tmp_path.as_uri(), "a")) == [uri]
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["doc.json"]  # no temp files left
    with pytest.raises(FileNotFoundError):
        store.read_text(uri + ".missing")


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(WarpSpeedConfigError, match=r"\(file://...\) or s3://bucket/prefix"):
        storage_for("gs://bucket/x")


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
