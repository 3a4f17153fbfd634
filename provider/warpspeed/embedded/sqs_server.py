"""An SQS-protocol server on loopback (moto) for the embedded stack and the tests."""

from __future__ import annotations

import functools
import json
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from typing import Any

REGION = "us-east-1"
ACCESS_KEY = "warpspeed-local"
SECRET_KEY = "warpspeed-local"


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LocalSqs:
    """A running loopback SQS server and the demo's queues on it."""

    endpoint_url: str
    queue_url: str
    dead_letter_queue_url: str

    def client(self) -> Any:
        """Return a boto3 SQS client for this server (the same client code as AWS)."""
        import boto3

        return boto3.client(
            "sqs", endpoint_url=self.endpoint_url, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )

    def airflow_connection(self) -> str:
        """Return the Airflow AWS connection (JSON form) that points at this server."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": ACCESS_KEY,
                "password": SECRET_KEY,
                "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION},
            }
        )


def create_queues(client: Any, name: str = "warpspeed-requests", max_receives: int = 5) -> tuple[str, str]:
    """Create the request queue and its DLQ (redrive after ``max_receives``); return both URLs."""
    dlq_url = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = client.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "600",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}),
        },
    )["QueueUrl"]
    return queue_url, dlq_url


_SQS_LOCK = threading.RLock()
_SQS_MUTATORS = (
    "send_message", "send_message_batch", "receive_message", "delete_message", "delete_message_batch",
    "change_message_visibility", "change_message_visibility_batch", "get_queue_attributes", "purge_queue",
)


def _locked(method: Any) -> Any:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _SQS_LOCK:
            return method(*args, **kwargs)

    call._warpspeed_locked = True  # type: ignore[attr-defined]
    return call


def speed_up_moto_sqs() -> None:
    """Make moto's SQS fast and thread-safe enough for thousands of messages, same results.

    Upstream moto (5.x) rebuilds every queue attribute, counting all messages, for each message
    it considers in ReceiveMessage, so draining n messages costs O(n^2) attribute builds (a few
    thousand messages took minutes). This reads the one attribute the check needs; the result
    is the same.
    """
    import time

    from moto.sqs import models
    from moto.sqs.models import SQSBackend

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else float(dt.replace(tzinfo=UTC).timestamp())

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    # moto checks every message's visibility with a datetime round trip; plain clock reads
    # give the same epoch values an order of magnitude faster.
    models.unix_time = unix_time
    models.unix_time_millis = unix_time_millis

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        retention = float(getattr(queue, "message_retention_period", 345_600))
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]

    # moto's SQS backend is not thread-safe: concurrent ReceiveMessage calls on one queue can
    # fail half-way ("Set changed size during iteration"), leaving messages in flight that no
    # caller got. SQS itself serialises per message, so serialising the backend is faithful.
    for name in _SQS_MUTATORS:
        method = getattr(SQSBackend, name)
        if not getattr(method, "_warpspeed_locked", False):
            setattr(SQSBackend, name, _locked(method))


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto's server on a free loopback port; yield its endpoint URL; stop it on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    speed_up_moto_sqs()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def queues_on(endpoint_url: str, queue_name: str = "warpspeed-requests") -> LocalSqs:
    """Create the request queue and its DLQ on a running server."""
    queue_url, dlq_url = create_queues(LocalSqs(endpoint_url, "", "").client(), queue_name)
    return LocalSqs(endpoint_url, queue_url, dlq_url)


@contextmanager
def local_sqs(queue_name: str = "warpspeed-requests") -> Iterator[LocalSqs]:
    """Start a loopback SQS server with the request queue and DLQ created; stop it on exit."""
    with moto_server() as endpoint:
        yield queues_on(endpoint, queue_name)
