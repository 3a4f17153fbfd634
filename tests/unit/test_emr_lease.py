"""The EMR pool's S3 lease on an S3-compatible server without conditional deletes (S3Proxy 4.0).

AWS S3 takes ``DeleteObject If-Match`` (general purpose buckets since 2025-09-16); S3Proxy 4.0.0
answers it ``501 NotImplemented`` while it honours conditional writes. Found by the rehearsal
(docs/emr.md): every ensure-clusters task failed releasing its lease there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from warpspeed.compute.emr.lease import S3Lease

REGION = "us-east-1"
BUCKET = "bkt-lease"
KEY = "locks/w.lease"


class NoConditionalDeletes:
    """An S3 client whose server refuses ``DeleteObject`` with ``If-Match``, as S3Proxy 4.0.0 does."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.deletes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def delete_object(self, **kwargs: Any) -> Any:
        self.deletes += 1
        if "IfMatch" in kwargs:
            raise ClientError({"Error": {"Code": "NotImplemented", "Message": "A header you provided implies "
                                         "functionality that is not implemented."},
                               "ResponseMetadata": {"HTTPStatusCode": 501}}, "DeleteObject")
        return self.client.delete_object(**kwargs)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[NoConditionalDeletes]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield NoConditionalDeletes(client)


def lease(s3: Any, **kwargs: Any) -> S3Lease:
    return S3Lease(s3, f"s3://{BUCKET}/locks", ttl_seconds=60, wait_seconds=0.3, sleep=lambda _s: None, **kwargs)


def test_a_released_lease_is_expired_in_place_and_the_next_holder_takes_it_at_once(s3: NoConditionalDeletes) -> None:
    with lease(s3).hold("w"):
        pass
    body = json.loads(s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())
    assert datetime.fromisoformat(body["expires_at"]) <= datetime.now(UTC)
    nxt = lease(s3)
    with nxt.hold("w"):  # no wait for the TTL: the release expired it
        assert json.loads(s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())["owner"] == nxt.owner
    assert s3.deletes == 2


def test_a_late_release_leaves_the_lease_its_successor_took_over(s3: NoConditionalDeletes) -> None:
    late = lease(s3, clock=lambda: datetime.now(UTC) + timedelta(seconds=120))
    held = lease(s3).hold("w")
    held.__enter__()
    with late.hold("w"):  # the holder's lease expired for this clock: taken over
        held.__exit__(None, None, None)  # the old holder's release must not touch the new lease
        body = json.loads(s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())
        assert body["owner"] == late.owner and body["token"] != "released"


def test_other_refusals_of_the_release_still_fail(s3: NoConditionalDeletes) -> None:
    class Denied(NoConditionalDeletes):
        def delete_object(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"},
                               "ResponseMetadata": {"HTTPStatusCode": 403}}, "DeleteObject")

    with pytest.raises(ClientError, match="AccessDenied"), lease(Denied(s3.client)).hold("w"):
        pass
