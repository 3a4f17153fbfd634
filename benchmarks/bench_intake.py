"""Intake throughput on the embedded SQS server (ElasticMQ): the collector vs a naive loop, same server, same run."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.seed import send_bodies
from warpspeed.embedded.sqs_server import LocalSqs, queues_on, sqs_server
from warpspeed.hooks.sqs import SqsIntakeHook
from warpspeed.intake.schema import validate_message
from warpspeed.intake.service import IntakeOptions, IntakeService
from warpspeed.storage.documents import LocalStorage
from warpspeed.window.manifests import IntakeManifest

MESSAGES = int(os.environ.get("WARPSPEED_BENCH_INTAKE_MESSAGES", "3000"))
"""Messages drained each way (the size knob: the suite's smoke run uses a few dozen)."""
MODELS = {"scoring": frozenset({"churn_risk"})}


def bodies(prefix: str) -> list[str]:
    return [
        json.dumps({"schema_version": 1, "request_id": f"{prefix}-{i}", "tenant_id": f"t{i % 300}",
                    "model": "churn_risk", "model_version": "v1", "workload": "scoring",
                    "estimated_accounts": 1000, "requested_at": "2026-11-20T21:00:00+00:00"})
        for i in range(MESSAGES)
    ]


def naive_drain(sqs: LocalSqs, manifest_uri: str) -> int:
    """Receive one message, validate it, delete it; write the manifest at the end."""
    client, requests = sqs.client(), []
    while True:
        msgs = client.receive_message(QueueUrl=sqs.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=0,
                                      VisibilityTimeout=600).get("Messages", [])
        if not msgs:
            break
        result = validate_message(msgs[0]["Body"], allowed_models=MODELS)
        if result.request is not None:
            requests.append(result.request)
        client.delete_message(QueueUrl=sqs.queue_url, ReceiptHandle=msgs[0]["ReceiptHandle"])
    LocalStorage().write_text(manifest_uri, IntakeManifest("w").merged(requests, []).to_json())
    return len(requests)


def run() -> Iterator[dict]:
    """Drain MESSAGES with each method on fresh queues of one loopback server."""
    with sqs_server(WarpSpeedSettings.from_mapping({}).jars_dir) as endpoint, tempfile.TemporaryDirectory() as tmp:
        fast, slow = queues_on(endpoint, "bench-collector"), queues_on(endpoint, "bench-naive")
        os.environ["AIRFLOW_CONN_WARPSPEED_BENCH"] = fast.airflow_connection()
        send_bodies(fast.client(), fast.queue_url, bodies("c"))
        send_bodies(slow.client(), slow.queue_url, bodies("n"))

        started = time.perf_counter()
        report = IntakeService(SqsIntakeHook(aws_conn_id="warpspeed_bench")).collect_window(
            queue_url=fast.queue_url, dlq_url=fast.dead_letter_queue_url, window_id="w",
            manifest_uri=(Path(tmp) / "collector.json").as_uri(), storage=LocalStorage(),
            allowed_models=MODELS, options=IntakeOptions(wait_seconds=0, receivers=4),
        )
        collector_s = time.perf_counter() - started

        started = time.perf_counter()
        naive_n = naive_drain(slow, (Path(tmp) / "naive.json").as_uri())
        naive_s = time.perf_counter() - started

    assert report.requests_in_manifest == naive_n == MESSAGES
    collector_rate, naive_rate = MESSAGES / collector_s, MESSAGES / naive_s
    note = (f"{MESSAGES} messages on one loopback ElasticMQ server; collector: 4 receivers x 10/receive, "
            f"batch deletes, manifest before delete; naive: 1/receive + 1 delete each")
    yield {"name": "intake_msgs_per_s", "value": round(collector_rate, 1), "unit": "msg/s", "note": note}
    yield {"name": "intake_naive_msgs_per_s", "value": round(naive_rate, 1), "unit": "msg/s", "note": note}
    yield {"name": "intake_speedup_vs_naive", "value": round(collector_rate / naive_rate, 2), "unit": "x",
           "note": "same server, same run"}
