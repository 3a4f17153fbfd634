"""The Glue task waits deferred in the Amazon provider's trigger: its async client must be installed."""

from __future__ import annotations

import asyncio

import pytest
from airflow.providers.amazon.aws.hooks.glue import GlueJobHook

pytestmark = pytest.mark.unit


def test_the_glue_trigger_builds_its_async_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """GlueJobCompleteTrigger polls through ``get_async_conn`` (aiobotocore, the provider's extra)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    async def build() -> str:
        async with await GlueJobHook(aws_conn_id=None, region_name="us-east-1").get_async_conn() as client:
            return str(client.meta.service_model.service_name)

    assert asyncio.run(build()) == "glue"
