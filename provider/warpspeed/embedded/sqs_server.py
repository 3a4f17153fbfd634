"""A real SQS server on loopback (ElasticMQ, from Maven Central) for the embedded stack and the tests.

The same boto3 code as production talks to it; nothing of the server is patched. moto stays for
the EMR, Glue and S3 control planes only (:mod:`warpspeed.embedded.control_planes`).

Messages persist in an H2 database under the server's folder (``messages-storage``, written
through at once: ``WRITE_DELAY=0``): queues, their attributes and redrive policy, messages in
flight with their receive counts, and the DLQ's content survive a crash and a restart.
ElasticMQ answers requests before it has restored the stored queues, so the server counts as
ready only once it lists all of them (:func:`sqs_process`). Two limits of ElasticMQ 1.6: a
``PurgeQueue`` is not persisted (purged messages come back after a restart; delete or recreate
the queue instead), and it authenticates nobody (it cannot check SigV4 signatures): it listens
on 127.0.0.1 only, and its data lives in the 0700 state folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from warpspeed.embedded.jvm import JVM_DEFAULTS, classpath, java_bin, java_process
from warpspeed.embedded.server import ServerProcess
from warpspeed.embedded.state import private_dir, stable_port, write_private
from warpspeed.embedded.supervisor import Supervisor, supervised

log = logging.getLogger(__name__)

REGION = "us-east-1"
ACCESS_KEY = "warpspeed-local"
SECRET_KEY = "warpspeed-local"
"""ElasticMQ checks no credentials; boto3 needs some to sign with."""


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


def elasticmq_config(port: int, storage: Path | None) -> str:
    """Return ElasticMQ's HOCON config: SQS on 127.0.0.1:``port`` only, messages persisted in ``storage``.

    :param storage: the H2 database's path (without ``.mv.db``); None keeps messages in memory only.

    Pekko's scheduler ticks every 100 ms, not every 10 ms: an idle server then used 0.06 CPU-s a
    minute instead of 0.24 (long polls and timeouts end up to 0.1 s later).
    """
    persisted = "" if storage is None else f"""messages-storage {{
  enabled = true
  uri = {json.dumps(f"jdbc:h2:{storage.resolve()};WRITE_DELAY=0")}
}}
"""
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
{persisted}pekko.http.server.parsing.illegal-header-warnings = off
pekko.scheduler.tick-duration = 100ms
"""


def sqs_process(jars_dir: Path, folder: Path, *, persist: bool = True) -> ServerProcess:
    """Prepare ``folder`` (config, stable port) and describe its ElasticMQ server; start nothing.

    It counts as ready once it lists every queue its store held when it started: ElasticMQ
    answers requests before it has restored them, and a client then gets ``QueueDoesNotExist``.

    :param persist: keep messages in ``folder`` across restarts (each operation then writes
        through to disk: measured 1.2-1.9 times slower than in memory).
    """
    cp = classpath(jars_dir, ELASTICMQ_JARS)
    folder = private_dir(folder.resolve())
    port = stable_port(folder / "port")
    storage = folder / "elasticmq-h2" if persist else None
    conf = write_private(folder / "elasticmq.conf", elasticmq_config(port, storage))
    process = java_process("sqs", ELASTICMQ_MAIN, cp, port=port, log_path=folder / "elasticmq.log",
                           jars_dir=jars_dir, ready_path="/?Action=ListQueues", home=folder,
                           jvm_args=[f"-Dconfig.file={conf}"])
    if storage is None:
        return process
    expected: set[str] = set()
    command = process.command

    def restoring() -> list[str]:
        expected.clear()
        expected.update(stored_queue_names(jars_dir, storage))
        return command()

    return dataclasses.replace(process, command=restoring,
                               ready=lambda: _lists_all(process.port, expected))


def stored_queue_names(jars_dir: Path, storage: Path) -> frozenset[str]:
    """Return the queues ElasticMQ's H2 store ``storage`` holds (read only; call it while no server runs).

    An unreadable store gives none (logged): the server then counts as ready once it answers.
    """
    if not storage.with_name(f"{storage.name}.mv.db").exists():
        return frozenset()
    h2 = sorted((jars_dir / ELASTICMQ_JARS).glob("h2-*.jar"))
    url = f"jdbc:h2:{storage.resolve()};IFEXISTS=TRUE;ACCESS_MODE_DATA=r"
    argv = [java_bin(), *JVM_DEFAULTS, "-cp", os.pathsep.join(map(str, h2)), "org.h2.tools.Shell",
            "-url", url, "-user", "", "-password", "", "-sql", "SELECT name FROM queue"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True, cwd="/").stdout
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("could not read the queues stored in %s (%s); not waiting for their restore", storage, err)
        return frozenset()
    lines = out.splitlines()  # a "NAME" header, one name a line, then "(N rows, T ms)"
    return frozenset(line.strip() for line in lines[1:] if line.strip() and not line.startswith("("))


def listed_queue_names(port: int) -> frozenset[str] | None:
    """Return the queues the server on ``port`` lists (None if it gives no answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?Action=ListQueues", timeout=2) as resp:
            root = ElementTree.fromstring(resp.read())
    except (OSError, ElementTree.ParseError):
        return None
    return frozenset(element.text.rsplit("/", 1)[-1] for element in root.iter()
                     if element.tag.rsplit("}", 1)[-1] == "QueueUrl" and element.text)


def _lists_all(port: int, expected: AbstractSet[str]) -> bool:
    listed = listed_queue_names(port)
    return listed is not None and expected <= listed


@contextmanager
def sqs_server(
    jars_dir: Path, work_dir: Path | None = None, supervisor: Supervisor | None = None, *, persist: bool = True
) -> Iterator[str]:
    """Run ElasticMQ (a real SQS server, JVM) on loopback; yield its endpoint URL; stop it on exit.

    :param jars_dir: the folder whose ``elasticmq/`` holds the server's jars (``make setup``).
    :param work_dir: its folder (config, port, messages, log); a temporary one if not given.
    :param supervisor: the stack's supervisor (one of its own if not given).
    :param persist: keep messages across restarts (see :func:`sqs_process`).
    """
    with tempfile.TemporaryDirectory(prefix="warpspeed-sqs-") as tmp:

        def describe() -> tuple[ServerProcess, str]:
            process = sqs_process(jars_dir, work_dir or Path(tmp), persist=persist)
            return process, f"http://127.0.0.1:{process.port}"

        with supervised(describe, supervisor, "warpspeed-sqs") as endpoint:
            log.info("ElasticMQ SQS server on %s", endpoint)
            yield endpoint


def queues_on(endpoint_url: str, queue_name: str = "warpspeed-requests") -> LocalSqs:
    """Create the request queue and its DLQ on a running server (kept if they exist)."""
    queue_url, dlq_url = create_queues(LocalSqs(endpoint_url, "", "").client(), queue_name)
    return LocalSqs(endpoint_url, queue_url, dlq_url)


@contextmanager
def local_sqs(
    jars_dir: Path, queue_name: str = "warpspeed-requests", work_dir: Path | None = None,
    supervisor: Supervisor | None = None,
) -> Iterator[LocalSqs]:
    """Run a loopback SQS server with the request queue and DLQ created; stop it on exit."""
    with sqs_server(jars_dir, work_dir, supervisor) as endpoint:
        yield queues_on(endpoint, queue_name)
