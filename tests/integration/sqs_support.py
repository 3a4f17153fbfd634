"""Intake on the loopback SQS server (ElasticMQ): request bodies, the intake hook, the queue's counts and its DLQ."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.hooks.sqs import SqsIntakeHook

MODELS = {"scoring": ["churn_risk"]}


def body(i: int) -> str:
    return json.dumps({
        "schema_version": 1, "request_id": f"req-{i:05d}", "tenant_id": f"tenant-{i % 97:03d}",
        "model": "churn_risk", "model_version": "v1", "workload": "scoring",
        "estimated_accounts": 100 + i, "requested_at": "2026-11-20T21:00:00+00:00",
    })


def hook_for(sqs: LocalSqs, monkeypatch: pytest.MonkeyPatch) -> SqsIntakeHook:
    monkeypatch.setenv("AIRFLOW_CONN_WARPSPEED_TEST", sqs.airflow_connection())
    return SqsIntakeHook(aws_conn_id="warpspeed_test")


def drain_dlq(sqs: LocalSqs) -> list[dict[str, Any]]:
    client, out = sqs.client(), []
    while True:
        msgs = client.receive_message(QueueUrl=sqs.dead_letter_queue_url, MaxNumberOfMessages=10,
                                      MessageAttributeNames=["All"], WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return out
        out.extend(msgs)
        client.delete_message_batch(QueueUrl=sqs.dead_letter_queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])


def queue_total(sqs: LocalSqs) -> int:
    attrs = sqs.client().get_queue_attributes(
        QueueUrl=sqs.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def wait_until_visible(sqs: LocalSqs, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        attrs = sqs.client().get_queue_attributes(
            QueueUrl=sqs.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        if int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0:
            return
        time.sleep(0.5)
    raise AssertionError("messages held by the crashed attempt never became visible again")
