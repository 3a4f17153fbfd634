"""Find, start, call and stop the warm local Spark engine of a state folder.

The engine (:mod:`warpspeed.compute.local.engine_server`) is one detached Python process per state
folder owning one SparkSession, shared by every task and window. The first task that needs it
starts it (under a file lock, so concurrent tasks start one), in a session of its own so killing
the task does not kill it. It is found through ``<home>/run/spark-engine.json`` (port, pid, token;
mode 0600; loopback only), health-checked before use, restarted when dead or when its code or
Spark conf (the :attr:`EngineSpec.fingerprint`) changed while idle, and it stops by itself after
``[warpspeed] local_spark_idle_seconds`` without jobs, or through :func:`stop_engine`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpspeed.exceptions import ComputeError

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Warpspeed-Token"
ACTIVE_STATES = frozenset({"PENDING", "RUNNING"})
ADOPTABLE_STATES = ACTIVE_STATES | {"COMPLETED"}
"""A same-named job in these states is the job already (as the EMR backend adopts a step): attached, not rerun."""
SERVER_MODULE = "warpspeed.compute.local.engine_server"
START_TIMEOUT_S = 240.0
LAUNCHER = (
    "import subprocess, sys\n"
    "log = open(sys.argv[1], 'ab')\n"
    "proc = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,"
    " start_new_session=True, close_fds=True)\n"
    "print(proc.pid)\n"
)
"""A throw-away parent: the engine is re-parented to init at once and leads a session of its own."""


class EngineUnavailable(ComputeError):
    """The warm engine cannot take this job (not startable, or busy running older code)."""


def run_dir(home: Path) -> Path:
    """Return the folder of the engine's discovery, lock and spec files."""
    return home / "run"


def discovery_path(home: Path) -> Path:
    """Return the engine's discovery file."""
    return run_dir(home) / "spark-engine.json"


def engine_log_path(home: Path) -> Path:
    """Return the engine's own log (the JVM's output, starts and stops)."""
    return home / "logs" / "spark-engine.log"


def write_private_json(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``path`` atomically, readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, path)


@dataclass(frozen=True)
class EngineSpec:
    """What an engine runs with; a running engine of another fingerprint is replaced when idle.

    The fingerprint covers the staged job code (``spark_jobs.zip``), the Spark conf (the catalog's
    endpoint included) and the idle timeout.
    """

    home: Path
    master: str
    jars: tuple[str, ...]
    conf: dict[str, str]
    zip_path: Path
    idle_seconds: float
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.zip_path.read_bytes())
        digest.update(json.dumps([self.master, self.jars, sorted(self.conf.items()), self.idle_seconds]).encode())
        object.__setattr__(self, "fingerprint", digest.hexdigest()[:16])


@dataclass(frozen=True)
class EngineHandle:
    """A running engine, as its discovery file describes it."""

    port: int
    pid: int
    token: str
    fingerprint: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
        """Call the engine; return ``(status, json)``."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={TOKEN_HEADER: self.token, "Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def healthy(self) -> dict[str, Any] | None:
        """Return the engine's health, or None when it does not answer (three tries)."""
        for attempt in range(3):
            with suppress(OSError, ValueError):
                status, body = self.call("GET", "/health", timeout=5.0)
                if status == 200 and body.get("pid") == self.pid:
                    return dict(body)
            time.sleep(0.5 * (attempt + 1))
        return None

    def submit(self, name: str, script: str, args: list[str], conf: dict[str, str], log_file: Path) -> dict[str, Any]:
        """Start a job (or attach to the running one of that name); raise :class:`EngineUnavailable`."""
        status, body = self.call("POST", "/jobs", {"name": name, "script": script, "args": args, "conf": conf,
                                                   "log_file": str(log_file)})
        if status != 200:
            raise EngineUnavailable(f"warm Spark engine refused {name}: {body.get('error', status)}")
        return dict(body)

    def job(self, job_id: str) -> dict[str, Any]:
        """Return a job's state."""
        status, body = self.call("GET", f"/jobs/{job_id}")
        if status != 200:
            raise ComputeError(f"warm Spark engine (pid {self.pid}) lost job {job_id}: {body.get('error', status)}")
        return dict(body)

    def cancel(self, job_id: str) -> None:
        """Cancel a job."""
        self.call("POST", f"/jobs/{job_id}/cancel")


def read_handle(home: Path) -> EngineHandle | None:
    """Return the engine the discovery file names, or None (no file, or a broken one)."""
    try:
        doc = json.loads(discovery_path(home).read_text())
        return EngineHandle(int(doc["port"]), int(doc["pid"]), str(doc["token"]), str(doc["fingerprint"]))
    except (OSError, ValueError, KeyError):
        return None


def running_engine(home: Path) -> EngineHandle | None:
    """Return the engine of ``home`` if it is running and answers, else None."""
    handle = read_handle(home)
    return handle if handle is not None and handle.healthy() is not None else None


@contextmanager
def engine_lock(home: Path) -> Iterator[None]:
    """Hold the state folder's engine lock (one starter or stopper at a time, across processes)."""
    run_dir(home).mkdir(parents=True, exist_ok=True)
    with (run_dir(home) / "spark-engine.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_engine(spec: EngineSpec) -> EngineHandle:
    """Return a healthy engine running ``spec``, starting (or replacing an idle stale) one if needed.

    :raises EngineUnavailable: the engine did not start, or runs other code and is busy.
    """
    with engine_lock(spec.home):
        handle = read_handle(spec.home)
        health = handle.healthy() if handle is not None else None
        if handle is not None and health is not None:
            if handle.fingerprint == spec.fingerprint:
                return handle
            if health["running"]:
                raise EngineUnavailable(f"warm Spark engine (pid {handle.pid}) runs other code and is busy")
            log.info("Replacing the idle warm Spark engine (pid %d): the job code or Spark conf changed", handle.pid)
        if handle is not None:
            _terminate(handle.pid, graceful=health is not None)
            discovery_path(spec.home).unlink(missing_ok=True)
        return _launch(spec)


def _launch(spec: EngineSpec) -> EngineHandle:
    spec_doc = {"home": str(spec.home), "master": spec.master, "jars": list(spec.jars), "conf": spec.conf,
                "zip": str(spec.zip_path), "idle_seconds": spec.idle_seconds, "fingerprint": spec.fingerprint}
    spec_file = run_dir(spec.home) / f"spec-{spec.fingerprint}-{os.getpid()}.json"
    write_private_json(spec_file, spec_doc)  # the catalog conf may hold credentials: not on the command line
    log_path = engine_log_path(spec.home)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(log_path), sys.executable, "-m", SERVER_MODULE, str(spec_file)],
        env=env, check=True, capture_output=True, text=True,
    )
    pid = int(out.stdout.strip())
    log.info("Starting the warm Spark engine (pid %d, log %s)", pid, log_path)
    while time.monotonic() - started < START_TIMEOUT_S:
        handle = read_handle(spec.home)
        if handle is not None and handle.pid == pid and handle.healthy() is not None:
            log.info("Warm Spark engine pid %d ready on 127.0.0.1:%d in %.1f s", pid, handle.port,
                     time.monotonic() - started)
            return handle
        if not _alive(pid):
            break
        time.sleep(0.3)
    _terminate(pid, graceful=False)
    spec_file.unlink(missing_ok=True)
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
    raise EngineUnavailable(f"the warm Spark engine did not start (log {log_path}):\n" + "\n".join(tail))


def _alive(pid: int) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and SERVER_MODULE in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def _terminate(pid: int, *, graceful: bool, timeout: float = 30.0) -> None:
    """Stop the engine process ``pid`` (SIGTERM first when ``graceful``), then kill its process group.

    The engine leads a session of its own, so its group holds exactly what it started: the JVM
    and its Python workers.
    """
    import psutil

    if graceful and _alive(pid):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    for proc in psutil.process_iter():
        with suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == pid:
                proc.kill()


def stop_engine(home: Path, timeout: float = 60.0) -> bool:
    """Stop the warm Spark engine of ``home`` (running jobs are cancelled); return whether one ran."""
    with engine_lock(home):
        handle = read_handle(home)
        if handle is None:
            return False
        with suppress(OSError, ValueError):
            handle.call("POST", "/stop", timeout=5.0)
        deadline = time.monotonic() + timeout
        while _alive(handle.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        _terminate(handle.pid, graceful=True)
        discovery_path(home).unlink(missing_ok=True)
        log.info("Stopped the warm Spark engine of %s (pid %d)", home, handle.pid)
        return True


def stop_engines_under(root: Path) -> int:
    """Stop every warm Spark engine of state folders under ``root`` (test sessions); return how many."""
    return sum(stop_engine(path.parent.parent) for path in sorted(root.glob("**/run/spark-engine.json")))
