"""The rehearsal stack: an S3 server, the EMR and Glue control planes, the step runner and its Spark cluster.

    with RehearsalStack(home, jars_dir) as rehearsal:
        env = rehearsal.airflow_env(sqs_endpoint)     # what Airflow's processes need to use it
        rehearsal.inject_spot("warpspeed-.*")          # the next matching Spark step loses its Spot nodes
        rehearsal.steps()                              # every step the runner ran, with its exact argv

The embedded stack's S3 server (S3Proxy, :mod:`warpspeed.embedded.s3_server`: a running one given
as ``shared_s3``, e.g. the live stack's, else one of its own, supervised and stopped with the
stack) and two processes of the rehearsal's own (each dying with the thread that
started it, see :mod:`.processes`): the control plane (:mod:`.control_plane`) and the step runner
(:mod:`.step_runner`), which owns the Spark master, its workers and every step. Airflow reaches
them only over HTTP, through its AWS connection (``endpoint_url`` = the control plane, S3 and SQS
routed to their servers by ``service_config``) and the catalog connection (Glue catalog, S3FileIO),
as a user points the provider at endpoints.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from warpspeed.config.s3 import STACK, EmbeddedS3, S3Access
from warpspeed.embedded.rehearsal.command_runner import NodeIdentity
from warpspeed.embedded.rehearsal.processes import marked_processes, reap_registered, spawn, stop_group
from warpspeed.embedded.rehearsal.runner_config import RunnerConfig
from warpspeed.embedded.s3_server import S3Server, s3_server
from warpspeed.embedded.state import free_port
from warpspeed.exceptions import WarpSpeedError

log = logging.getLogger(__name__)

REGION = "us-east-1"
BUCKET = "warpspeed-rehearsal"
AWS_CONN_ID = "warpspeed_aws"
CATALOG_CONN_ID = "warpspeed_catalog"
NODE_PYTHON_ENV = "WARPSPEED_REHEARSAL_NODE_PYTHON"


def default_node_python() -> Path:
    """Return the node Python's environment kept across rehearsals (``$WARPSPEED_REHEARSAL_NODE_PYTHON``)."""
    configured = os.environ.get(NODE_PYTHON_ENV)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(configured) if configured else cache / "warpspeed" / "rehearsal-node-python"


def order(control_plane: str, what: str, body: dict[str, Any]) -> None:
    """Send the step runner an order through the control plane (``spot``: a Spot rule, ``idle``: a timeout)."""
    import urllib.request

    data = json.dumps(body).encode()
    request = urllib.request.Request(f"{control_plane}/_rehearsal/{what}", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass


@dataclass(frozen=True)
class ExecutedStep:
    """A step the runner ran: what command-runner received and what ``spark-submit`` was given."""

    cluster_id: str
    step_id: str
    args: list[str]
    spark_submit: list[str] | None
    result: dict[str, Any] | None


@dataclass
class RehearsalStack:
    """The rehearsal's servers and runner under ``home`` (see the module doc).

    :param idle_seconds: every cluster's idle timeout instead of its profile's (None: the profile's).
    :param max_steps: steps running at once on this machine.
    :param shared_s3: a running S3 server to use (the live stack's: one S3Proxy serves both); None starts
        one of the rehearsal's own in ``home/s3``, stopped with the rehearsal.
    """

    home: Path
    jars_dir: Path
    idle_seconds: float | None = None
    workers: int = 2
    max_steps: int = 3
    node_python: Path = field(default_factory=default_node_python)
    control_port: int = field(default_factory=free_port)
    shared_s3: S3Server | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = self.home.resolve()
        self._lock: IO[str] | None = None
        self._servers = ExitStack()
        self._s3: S3Access | None = None

    @property
    def identity(self) -> S3Access:
        """Return the S3 server's endpoint and the key everything of the rehearsal signs with (once started)."""
        if self._s3 is None:
            raise WarpSpeedError("the rehearsal's S3 server is not running: start the rehearsal first")
        return self._s3

    @property
    def s3_endpoint(self) -> str:
        """Return the S3 server's URL."""
        return str(self.identity.endpoint_url)

    @property
    def control_plane(self) -> str:
        """Return the EMR and Glue control planes' URL."""
        return f"http://127.0.0.1:{self.control_port}"

    @property
    def storage_prefix(self) -> str:
        """Return ``[warpspeed] storage_prefix`` on the rehearsal."""
        return f"s3://{BUCKET}/warpspeed"

    @property
    def node_identity(self) -> NodeIdentity:
        """Return the credentials and endpoints the nodes use."""
        return NodeIdentity(str(self.identity.access_key_id), str(self.identity.secret_access_key), REGION,
                            self.s3_endpoint, self.control_plane)

    def __enter__(self) -> RehearsalStack:
        with ExitStack() as undo:  # a start that fails half-way stops what it started
            undo.callback(self.stop)
            self.start()
            undo.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 600.0) -> dict[str, float]:
        """Start the three processes (at once) and wait until each is ready; return the seconds each took.

        :raises WarpSpeedError: when another rehearsal uses this folder (its processes would be reaped).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        lock = (self.home / ".lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise WarpSpeedError(f"another rehearsal runs in {self.home}; stop it or use another folder") from None
        self._lock = lock
        reap_registered(self.home)
        began = time.monotonic()
        server = self.shared_s3 or self._servers.enter_context(s3_server(self.home / "s3", self.jars_dir))
        self._s3 = EmbeddedS3(server.endpoint_url, REGION, server.credentials_file, BUCKET).access(STACK)
        timings = {"s3": round(time.monotonic() - began, 1)}
        endpoint_file = self.home / "control-plane.endpoint"
        endpoint_file.unlink(missing_ok=True)
        self.procs["control-plane"] = spawn(
            [sys.executable, "-m", "warpspeed.embedded.rehearsal.control_plane", "--port", str(self.control_port),
             "--endpoint-file", str(endpoint_file)], env=os.environ, log=self.home / "control-plane.log",
            registry=self.home)
        runner_home = self.home / "runner"
        (runner_home / "ready").unlink(missing_ok=True)
        config = RunnerConfig(
            home=runner_home, identity=self.node_identity, python_home=self.node_python,
            hadoop_jars=self._jars("hadoop-aws-*.jar", "aws-java-sdk-bundle-*.jar"),
            iceberg_jars=self._jars("iceberg-spark-runtime-*.jar", "iceberg-aws-bundle-*.jar"),
            workers=self.workers, idle_seconds=self.idle_seconds, max_steps=self.max_steps,
        ).write(runner_home / "config.json")
        self.procs["runner"] = spawn(
            [sys.executable, "-m", "warpspeed.embedded.rehearsal.step_runner", "--config", str(config)],
            env=os.environ, log=self.home / "runner.log", registry=self.home)
        timings["control_plane"] = self._wait("control-plane", endpoint_file.exists, began, timeout)
        self.s3().create_bucket(Bucket=BUCKET)
        timings["runner"] = self._wait("runner", (runner_home / "ready").exists, began, timeout)
        log.info("rehearsal up in %s (S3 %s, control plane %s)", timings, self.s3_endpoint, self.control_plane)
        return timings

    def _jars(self, *patterns: str) -> tuple[str, ...]:
        """Return the jars of ``make setup`` matching ``patterns``, one each (EMR's /usr/share/aws/... on a node)."""
        found = [sorted(self.jars_dir.glob(p)) for p in patterns]
        missing = [p for p, jars in zip(patterns, found, strict=True) if not jars]
        if missing:
            raise WarpSpeedError(f"{self.jars_dir} lacks {', '.join(missing)}: run `warpspeed setup`")
        return tuple(str(jars[-1]) for jars in found)

    def _wait(self, name: str, ready: Any, began: float, timeout: float) -> float:
        while not ready():
            proc = self.procs[name]
            if proc.poll() is not None or time.monotonic() - began > timeout:
                log_file = self.home / f"{name}.log"
                tail = log_file.read_text(errors="replace")[-3000:] if log_file.exists() else ""
                raise WarpSpeedError(f"the rehearsal's {name} did not start (log {log_file}):\n{tail}")
            time.sleep(0.2)
        return round(time.monotonic() - began, 1)

    def stop(self) -> list[int]:
        """Stop the runner (its steps and Spark first), the control plane and S3; return pids left (killed)."""
        for name in ("runner", "control-plane"):
            if name in self.procs:
                stop_group(self.procs.pop(name), timeout=90 if name == "runner" else 20)
        self._servers.close()
        self._s3 = None
        if self._lock is None:  # not started: nothing of ours runs
            return []
        reap_registered(self.home / "runner" / "processes")
        reap_registered(self.home)
        self._lock.close()
        self._lock = None
        return sorted({**marked_processes(self.home), **marked_processes(self.home / "runner" / "processes")})

    # -- what Airflow and the tests need ---------------------------------------------------
    def catalog_extra(self) -> dict[str, str]:
        """Return the catalog connection's extra: the Glue Data Catalog and S3FileIO at the rehearsal's endpoints."""
        return {"type": "glue", "warehouse": f"s3://{BUCKET}/warehouse", "region": REGION, "client.region": REGION,
                "glue.endpoint": self.control_plane, "s3.endpoint": self.s3_endpoint, "s3.path-style-access": "true"}

    def airflow_env(self, sqs_endpoint: str | None = None) -> dict[str, str]:
        """Return the environment that points Airflow at the rehearsal: the emr backend, its connections, S3.

        The AWS connection's ``endpoint_url`` is the control plane (EMR, Glue); ``service_config``
        sends S3 to the S3 server and SQS to ``sqs_endpoint``. The AWS variables are the worker's
        instance profile's stand-in (pyiceberg and pyarrow use the default credential chain).
        """
        services: dict[str, Any] = {"s3": {"endpoint_url": self.s3_endpoint}}
        if sqs_endpoint:
            services["sqs"] = {"endpoint_url": sqs_endpoint}
        aws = {"conn_type": "aws", "login": self.identity.access_key_id, "password": self.identity.secret_access_key,
               "extra": {"region_name": REGION, "endpoint_url": self.control_plane, "service_config": services}}
        return {
            f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": json.dumps(aws),
            f"AIRFLOW_CONN_{CATALOG_CONN_ID.upper()}": json.dumps({"conn_type": "generic",
                                                                   "extra": self.catalog_extra()}),
            "AIRFLOW__WARPSPEED__AWS_CONN_ID": AWS_CONN_ID,
            "AIRFLOW__WARPSPEED__CATALOG_CONN_ID": CATALOG_CONN_ID,
            "AIRFLOW__WARPSPEED__COMPUTE_BACKEND": "emr",
            "AIRFLOW__WARPSPEED__STORAGE_PREFIX": self.storage_prefix,
            "AWS_ACCESS_KEY_ID": str(self.identity.access_key_id),
            "AWS_SECRET_ACCESS_KEY": str(self.identity.secret_access_key),
            "AWS_DEFAULT_REGION": REGION,
        }

    def s3(self) -> Any:
        """Return an S3 client for the rehearsal's S3 server."""
        return self.identity.boto3_client()

    def inject_spot(self, pattern: str = ".*", **rule: float) -> None:
        """Reclaim the Spot nodes under the next running Spark step named like ``pattern`` (see :mod:`.chaos`).

        :param rule: the rule's other fields (``rounds``, ``spacing``, ``after_seconds``, ``grace``).
        """
        order(self.control_plane, "spot", {"pattern": pattern, **rule})

    def set_idle_timeout(self, seconds: float) -> None:
        """Give every cluster this idle timeout from now on (instead of its profile's)."""
        order(self.control_plane, "idle", {"seconds": seconds})

    def steps(self) -> list[ExecutedStep]:
        """Return every step the runner ran (oldest first), with the exact argv it executed."""
        found = []
        for argv_file in sorted((self.home / "runner" / "clusters").glob("*/steps/*/argv.json"),
                                key=lambda p: p.stat().st_mtime):
            folder = argv_file.parent
            submitted = folder / "spark-submit.argv"
            result = folder / "result.json"
            found.append(ExecutedStep(
                cluster_id=folder.parent.parent.name, step_id=folder.name,
                args=json.loads(argv_file.read_text())["args"],
                spark_submit=submitted.read_text().split("\0")[:-1] if submitted.exists() else None,
                result=json.loads(result.read_text()) if result.exists() else None,
            ))
        return found
