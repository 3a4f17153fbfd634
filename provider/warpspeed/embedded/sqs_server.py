"""A real SQS server on loopback (ElasticMQ, from Maven Central) for the embedded stack and the tests.

The same boto3 code as production talks to it; nothing of the server is patched. moto stays for
the EMR, Glue and S3 control planes only (:mod:`warpspeed.embedded.control_planes`).
"""

from __future__ import annotations

import json
import logging
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warpspeed.embedded.jvm import classpath, java_server

log = logging.getLogger(__name__)

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


ELASTICMQ_MAIN = "org.elasticmq.server.Main"
ELASTICMQ_JARS = "elasticmq"
ACCOUNT_ID = "000000000000"


def elasticmq_config(port: int) -> str:
    """Return ElasticMQ's HOCON config: SQS on 127.0.0.1:``port`` only, queue URLs on that address."""
    return f"""include classpath("reference.conf")
node-address {{
  protocol = http
  host = "127.0.0.1"
  port = {port}
  context-path = ""
}}
rest-sqs {{
  enabled = true
  bind-port = {port}
  bind-hostname = "127.0.0.1"
  sqs-limits = strict
}}
rest-stats {{
  enabled = false
}}
generate-node-address = false
aws {{
  region = "{REGION}"
  accountId = "{ACCOUNT_ID}"
}}
"""


@contextmanager
def sqs_server(jars_dir: Path, work_dir: Path | None = None) -> Iterator[str]:
    """Start ElasticMQ (a real SQS server, JVM) on a free loopback port; yield its endpoint URL.

    :param jars_dir: the folder whose ``elasticmq/`` holds the server's jars (``make setup``).
    :param work_dir: where its config and log go (a temporary folder if not given).
    """
    cp = classpath(jars_dir, ELASTICMQ_JARS)
    with tempfile.TemporaryDirectory(prefix="warpspeed-sqs-") as tmp:
        folder = work_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = folder / "elasticmq.conf"
        conf.write_text(elasticmq_config(port), encoding="utf-8")
        endpoint = f"http://127.0.0.1:{port}"
        args = ["-Xmx256m", "-XX:+UseSerialGC", f"-Dconfig.file={conf}", "-cp", cp, ELASTICMQ_MAIN]
        with java_server(args, ready_url=f"{endpoint}/?Action=ListQueues", log_path=folder / "elasticmq.log"):
            log.info("ElasticMQ SQS server on %s", endpoint)
            yield endpoint


def queues_on(endpoint_url: str, queue_name: str = "warpspeed-requests") -> LocalSqs:
    """Create the request queue and its DLQ on a running server."""
    queue_url, dlq_url = create_queues(LocalSqs(endpoint_url, "", "").client(), queue_name)
    return LocalSqs(endpoint_url, queue_url, dlq_url)


@contextmanager
def local_sqs(jars_dir: Path, queue_name: str = "warpspeed-requests") -> Iterator[LocalSqs]:
    """Start a loopback SQS server with the request queue and DLQ created; stop it on exit."""
    with sqs_server(jars_dir) as endpoint:
        yield queues_on(endpoint, queue_name)
