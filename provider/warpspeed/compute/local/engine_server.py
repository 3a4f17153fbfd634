"""The warm local Spark engine: one long-lived SparkSession that runs the local backend's jobs.

Run as ``python -m warpspeed.compute.local.engine_server <spec.json>`` (started detached by
:func:`warpspeed.compute.local.engine.ensure_engine`, never by hand). It listens on loopback with a
token (both in the discovery file ``<home>/run/spark-engine.json``, mode 0600) and runs each job
script's ``run(spark, argv) -> int`` on a fresh ``spark.newSession()`` (its own SQL conf) in a
thread of its own and a Spark job group of its own, so a job can be cancelled and one failing job
never fails another or the engine. A job submitted under the name of a job still running, or of
one that completed, attaches to it: a retried task finds its job as it finds its EMR step. Each
job's output goes to its log file. The engine stops when asked, on SIGTERM, when its discovery file
disappears, or after ``idle_seconds`` without jobs.
"""

from __future__ import annotations

import ctypes
import hmac
import importlib
import io
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import threading
import time
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from warpspeed.compute.local.engine import (
    ACTIVE_STATES,
    ADOPTABLE_STATES,
    TOKEN_HEADER,
    discovery_path,
    write_private_json,
)
from warpspeed.config.catalog_secrets import spark_secret_file, with_gateway_properties

log = logging.getLogger("warpspeed.warm_spark")
MAX_CONCURRENT_JOBS = 4


class JobCancelled(BaseException):
    """Raised in a job's thread when the job is cancelled."""


class ThreadRouter(io.TextIOBase):
    """A ``sys.stdout``/``sys.stderr`` that writes to the current job's log in a job thread."""

    def __init__(self, default: Any) -> None:
        self.default = default
        self.local = threading.local()

    def write(self, text: str) -> int:
        """Write to the job log of this thread, else to the engine's own stream."""
        stream = getattr(self.local, "stream", None) or self.default
        stream.write(text)
        return len(text)

    def flush(self) -> None:
        """Flush the stream of this thread."""
        (getattr(self.local, "stream", None) or self.default).flush()


@dataclass
class Job:
    """One job on the engine."""

    job_id: str
    name: str
    script: str
    args: list[str]
    conf: dict[str, str]
    log_path: Path
    entry: Callable[[Any, list[str]], int]
    state: str = "PENDING"
    returncode: int | None = None
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    cancelled: bool = False
    thread: threading.Thread | None = None

    def view(self, attached: bool = False) -> dict[str, Any]:
        """Return the JSON form clients see."""
        return {"job_id": self.job_id, "name": self.name, "state": self.state, "returncode": self.returncode,
                "seconds": self.seconds, "log_file": str(self.log_path), "attached": attached}


class Engine:
    """The jobs of one SparkSession."""

    def __init__(self, spark: Any, zip_path: Path, idle_seconds: float, router: ThreadRouter) -> None:
        self.spark = spark
        self.zip_path = zip_path
        self.idle_seconds = idle_seconds
        self.router = router
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(MAX_CONCURRENT_JOBS)
        self.last_activity = time.monotonic()
        self.stopping = threading.Event()
        self.stop_reason = ""
        self.modules = {Path(n).name: n[:-3].replace("/", ".") for n in zipfile.ZipFile(zip_path).namelist()
                        if n.endswith(".py") and n.count("/") == 1}

    def active(self) -> list[Job]:
        """Return the jobs not ended yet."""
        return [j for j in self.jobs.values() if j.state in ACTIVE_STATES]

    def entry_point(self, script: str) -> Callable[[Any, list[str]], int] | None:
        """Return the script's ``run(spark, argv)``, or None when it has none."""
        module_name = self.modules.get(script)
        if module_name is None:
            return None
        run = getattr(importlib.import_module(module_name), "run", None)
        return run if callable(run) else None

    def submit(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Start a job, or attach to the running or completed job of the same name."""
        with self.lock:
            if self.stopping.is_set():
                return 503, {"error": f"engine stopping ({self.stop_reason})"}
            same = next((j for j in self.jobs.values() if j.name == body["name"] and j.state in ADOPTABLE_STATES), None)
            if same is not None:
                return 200, same.view(attached=True)
            entry = self.entry_point(body["script"])
            if entry is None:
                return 409, {"error": f"{body['script']} has no run(spark, argv) in {self.zip_path.name}"}
            job_id = f"local-{body['name']}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
            job = Job(job_id, body["name"], body["script"], list(body.get("args") or ()),
                      dict(body.get("conf") or {}), Path(body["log_file"]), entry)
            job.thread = threading.Thread(target=self._run, args=(job,), name=job_id, daemon=True)
            self.jobs[job_id] = job
            self.last_activity = time.monotonic()
        job.thread.start()
        return 200, job.view()

    def _run(self, job: Job) -> None:
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        sc = self.spark.sparkContext
        with job.log_path.open("w", encoding="utf-8", buffering=1) as out, self.slots:
            self.router.local.stream = out
            try:
                if job.cancelled:
                    raise JobCancelled()
                job.state, job.started = "RUNNING", time.monotonic()
                print(f"warm engine job {job.job_id} started at {time.time():.3f}: {job.script} {' '.join(job.args)}",
                      flush=True)
                session = self.spark.newSession()
                # the active session of this thread: what Iceberg's source and SparkSession.active() see
                sc._jvm.org.apache.spark.sql.SparkSession.setActiveSession(session._jsparkSession)
                for key, value in job.conf.items():
                    # a catalog's settings are read when a session first uses it: each job's session
                    # loads the catalog afresh, with the job's S3 key
                    if session.conf.isModifiable(key) or key.startswith("spark.sql.catalog."):
                        session.conf.set(key, value)
                    else:
                        print(f"conf {key} cannot change per job on the warm engine; ignored", flush=True)
                sc.setJobGroup(job.job_id, job.name, interruptOnCancel=True)
                job.returncode = int(job.entry(session, job.args) or 0)
            except SystemExit as exc:  # argparse errors and explicit exits
                job.returncode = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc(file=out)
                job.returncode = 1
            finally:
                self.router.local.stream = None
                sc.setLocalProperty("spark.jobGroup.id", None)
                job.seconds = round(time.monotonic() - job.started, 3)
                job.state = ("CANCELLED" if job.cancelled else "COMPLETED" if job.returncode == 0 else "FAILED")
                print(f"warm engine job {job.job_id} ended at {time.time():.3f}: {job.state} (exit {job.returncode}) "
                      f"in {job.seconds} s", file=out)
                self.last_activity = time.monotonic()

    def cancel(self, job_id: str) -> tuple[int, dict[str, Any]]:
        """Cancel a job: its Spark job group, and the Python code between its Spark actions."""
        job = self.jobs.get(job_id)
        if job is None:
            return 404, {"error": f"no job {job_id}"}
        if job.state in ACTIVE_STATES and not job.cancelled:
            job.cancelled = True
            threading.Thread(target=self._keep_cancelling, args=(job,), daemon=True).start()
        return 200, job.view()

    def _keep_cancelling(self, job: Job) -> None:
        thread = job.thread
        if thread is not None and thread.ident is not None and job.state == "RUNNING":
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(JobCancelled))
        while job.state in ACTIVE_STATES and thread is not None and thread.is_alive():
            self.spark.sparkContext.cancelJobGroup(job.job_id)  # a new action may start after one cancel
            time.sleep(0.2)
        if job.state in ACTIVE_STATES:  # the cancel landed while the job was wrapping up
            job.state, self.last_activity = "CANCELLED", time.monotonic()

    def health(self) -> dict[str, Any]:
        """Return what a client checks before it submits."""
        return {"pid": os.getpid(), "running": len(self.active()), "jobs": len(self.jobs),
                "idle_seconds": self.idle_seconds, "zip": str(self.zip_path)}

    def stop(self, reason: str) -> None:
        """Refuse new jobs, cancel the running ones and let the main thread exit."""
        with self.lock:
            if self.stopping.is_set():
                return
            self.stop_reason = reason
            self.stopping.set()
        for job in self.active():
            self.cancel(job.job_id)

    def watch(self, discovery: Path, token: str) -> None:
        """Stop after ``idle_seconds`` without jobs, or when the discovery file is no longer ours."""
        while not self.stopping.wait(1.0):
            if not self.active() and time.monotonic() - self.last_activity > self.idle_seconds:
                self.stop(f"idle for {self.idle_seconds:.0f} s")
            try:
                ours = json.loads(discovery.read_text())["token"] == token
            except (OSError, ValueError, KeyError):
                ours = False
            if not ours:
                self.stop(f"{discovery} removed or taken over")


def make_handler(engine: Engine, token: str) -> type[BaseHTTPRequestHandler]:
    """Return the HTTP handler class of ``engine`` (JSON in and out, token required)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _allowed(self) -> bool:
            if hmac.compare_digest(self.headers.get(TOKEN_HEADER, ""), token):
                return True
            self._reply(403, {"error": "bad token"})
            return False

        def do_GET(self) -> None:
            if not self._allowed():
                return
            parts = self.path.strip("/").split("/")
            if parts == ["health"]:
                self._reply(200, engine.health())
            elif len(parts) == 2 and parts[0] == "jobs" and parts[1] in engine.jobs:
                self._reply(200, engine.jobs[parts[1]].view())
            else:
                self._reply(404, {"error": f"no {self.path}"})

        def do_POST(self) -> None:
            if not self._allowed():
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            parts = self.path.strip("/").split("/")
            if parts == ["jobs"]:
                self._reply(*engine.submit(body))
            elif len(parts) == 3 and parts[0] == "jobs" and parts[2] == "cancel":
                self._reply(*engine.cancel(parts[1]))
            elif parts == ["stop"]:
                engine.stop("asked to stop")
                self._reply(200, {"stopping": True})
            else:
                self._reply(404, {"error": f"no {self.path}"})

    return Handler


def start_session(spec: dict[str, Any], zip_path: Path) -> Any:
    """Start the engine's SparkSession with the backend's Spark conf and the staged job code."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(spec["master"]).appName("warpspeed-local-engine")
    conf = {"spark.jars": ",".join(spec["jars"]), "spark.scheduler.mode": "FAIR",
            "spark.python.daemon.module": "warpspeed.compute.local.spark_daemon", **spec["conf"]}
    # pyspark puts the builder's settings on the JVM's command line: secrets go in a private file
    conf, secrets_file = spark_secret_file(conf, Path(spec["home"]) / "run")
    os.environ.update(with_gateway_properties(secrets_file, os.environ))
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.addPyFile(str(zip_path))
    return spark


def main(argv: list[str]) -> int:
    """Run the engine described by the spec file ``argv[0]`` until it stops."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    spec_path.unlink(missing_ok=True)
    home = Path(spec["home"])
    # The staged zip is replaced by later tasks; this copy is not. It is this process's own: an engine of
    # the same code started while this one was starting (its starter killed) takes the discovery file
    # over, and this one's exit must not delete the zip the new one runs.
    zip_path = home / "run" / f"spark_jobs-{spec['fingerprint']}-{os.getpid()}.zip"
    shutil.copyfile(spec["zip"], zip_path)
    sys.path.insert(0, str(zip_path))
    router = ThreadRouter(sys.stdout)
    sys.stdout = sys.stderr = router
    spark = start_session(spec, zip_path)
    engine = Engine(spark, zip_path, float(spec["idle_seconds"]), router)
    token = secrets.token_urlsafe(24)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(engine, token))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()
    discovery = discovery_path(home)
    write_private_json(discovery, {"port": httpd.server_address[1], "pid": os.getpid(), "token": token,
                                   "fingerprint": spec["fingerprint"], "started_at": datetime.now(UTC).isoformat()})
    log.info("warm Spark engine pid %d on 127.0.0.1:%d (idle stop after %s s)", os.getpid(),
             httpd.server_address[1], spec["idle_seconds"])
    signal.signal(signal.SIGTERM, lambda *_: engine.stop("SIGTERM"))
    threading.Thread(target=engine.watch, args=(discovery, token), name="watch", daemon=True).start()
    while not engine.stopping.wait(1.0):
        pass
    log.info("stopping: %s", engine.stop_reason)
    deadline = time.monotonic() + 30
    while engine.active() and time.monotonic() < deadline:
        time.sleep(0.2)
    httpd.shutdown()
    try:
        if json.loads(discovery.read_text())["token"] == token:
            discovery.unlink()
    except (OSError, ValueError, KeyError):
        pass
    spark.stop()
    zip_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
