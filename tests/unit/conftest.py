"""Fixtures shared by the unit tests (those of every tier are in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.unit.emr_support import BUCKET, REGION


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the test in moto's in-process AWS, with test credentials and the EMR pool's bucket.

    Modules on moto take it for every test: ``pytestmark = pytest.mark.usefixtures("aws_env")``.
    """
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield
