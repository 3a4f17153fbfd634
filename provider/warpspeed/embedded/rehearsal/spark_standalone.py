"""A Spark standalone cluster on loopback from pyspark's own jars: one master, N workers (real, not emulated).

Executors are separate JVMs started by the workers, their Python workers separate processes, as on
EMR's YARN nodes. Every JVM comes from ``$SPARK_HOME/bin/spark-class`` (which ``exec``s java, so
the process we hold is the JVM), through :func:`warpspeed.embedded.rehearsal.processes.spawn`.

Pitfalls this module avoids (each seen in the prototype): without ``SPARK_HOME`` the launch scripts
run ``find_spark_home.py`` with whatever ``PYSPARK_PYTHON`` says; without ``SPARK_CONF_DIR`` they
read ``$SPARK_HOME/conf`` inside the virtualenv.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpspeed.embedded.jvm import QUICK_JIT
from warpspeed.embedded.rehearsal.processes import spawn, stop_group
from warpspeed.embedded.state import free_port

EXECUTOR_CLASS = b"org.apache.spark.executor.CoarseGrainedExecutorBackend"
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n%ex
logger.deploy.name = org.apache.spark.deploy
logger.deploy.level = info
logger.scheduler.name = org.apache.spark.scheduler
logger.scheduler.level = info
logger.ui.name = org.apache.spark.ui.SparkUI
logger.ui.level = info
"""
"""Driver logging the runner reads: ``Connected to Spark cluster with app ID``, task losses, the UI address."""


def spark_home() -> Path:
    """Return pyspark's folder: its ``bin/``, ``sbin/``, ``jars/`` and ``python/lib`` are a Spark distribution."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def spark_env(base: Mapping[str, str], conf_dir: Path, **extra: str) -> dict[str, str]:
    """Return ``base`` plus what every Spark process of the rehearsal needs (loopback only, our conf dir)."""
    return dict(base) | {
        "SPARK_HOME": str(spark_home()),
        "SPARK_CONF_DIR": str(conf_dir),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_HOSTNAME": "127.0.0.1",
        "SPARK_NO_DAEMONIZE": "1",
    } | extra


def _proc_argv(pid_dir: Path) -> list[bytes]:
    return (pid_dir / "cmdline").read_bytes().split(b"\0")


def _parent(pid_dir: Path) -> int:
    return int((pid_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])


@dataclass
class StandaloneCluster:
    """One master and its workers under ``home`` (logs, work dirs, the base conf dir)."""

    home: Path
    registry: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    master_port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def master_url(self) -> str:
        """Return ``spark://127.0.0.1:<port>``."""
        return f"spark://127.0.0.1:{self.master_port}"

    @property
    def conf_dir(self) -> Path:
        """Return the conf dir of the master and workers (their log4j2)."""
        return self.home / "conf"

    def state(self) -> dict[str, Any]:
        """Return the master's JSON status (workers, applications)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as resp:
            return dict(json.loads(resp.read()))

    def _spawn(self, name: str, args: list[str], env: Mapping[str, str]) -> None:
        argv = [str(spark_home() / "bin" / "spark-class"), *args]
        self.procs[name] = spawn(argv, env=env, log=self.home / "logs" / f"{name}.log", registry=self.registry)

    def start(self, base_env: Mapping[str, str], timeout: float = 300.0) -> dict[str, float]:
        """Start the master, then the workers; wait until all are ALIVE; return the seconds each took."""
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "log4j2.properties").write_text(LOG4J2)
        env = spark_env(base_env, self.conf_dir, SPARK_DAEMON_MEMORY="512m", SPARK_DAEMON_JAVA_OPTS=QUICK_JIT)
        began = time.monotonic()
        self._spawn("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(self.master_port), "--webui-port", str(self.ui_port)], env)
        timings = {"master": self._wait(lambda s: s.get("status") == "ALIVE", timeout, began)}
        for i in range(self.workers):
            work = self.home / f"worker{i}"
            work.mkdir(parents=True, exist_ok=True)
            self._spawn(f"worker{i}", ["org.apache.spark.deploy.worker.Worker", self.master_url, "--host", "127.0.0.1",
                                       "--cores", str(self.cores), "--memory", self.memory, "--webui-port", "0",
                                       "--work-dir", str(work)], env)
        timings["workers"] = self._wait(
            lambda s: sum(w.get("state") == "ALIVE" for w in s.get("workers", [])) >= self.workers, timeout, began)
        return timings

    def _wait(self, ready: Callable[[dict[str, Any]], bool], timeout: float, began: float) -> float:
        while time.monotonic() - began < timeout:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"Spark {name} exited ({proc.returncode}); log {self.home / 'logs' / name}.log")
            try:
                if ready(self.state()):
                    return round(time.monotonic() - began, 2)
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"the Spark standalone cluster was not up after {timeout:.0f} s; logs in {self.home}/logs")

    def executors(self, app_id: str) -> dict[int, str]:
        """Return ``{pid: executor id}`` of the executor JVMs of application ``app_id`` on this machine."""
        found = {}
        for pid_dir in Path("/proc").iterdir():
            if not pid_dir.name.isdigit():
                continue
            try:
                argv = _proc_argv(pid_dir)
            except OSError:
                continue
            if EXECUTOR_CLASS in argv and b"--app-id" in argv and argv[argv.index(b"--app-id") + 1] == app_id.encode():
                executor = argv[argv.index(b"--executor-id") + 1].decode() if b"--executor-id" in argv else "?"
                found[int(pid_dir.name)] = executor
        return found

    def python_busy(self, executors: Mapping[int, str]) -> set[int]:
        """Return those of ``executors`` with a child process (PySpark's daemon: Python tasks ran or run)."""
        busy = set()
        for pid_dir in Path("/proc").iterdir():
            try:
                parent = _parent(pid_dir) if pid_dir.name.isdigit() else None
            except (OSError, ValueError, IndexError):
                continue
            if parent is not None and parent in executors:
                busy.add(parent)
        return busy

    def stop(self) -> None:
        """Stop the workers (their executors with them), then the master."""
        for name in sorted(self.procs, reverse=True):
            stop_group(self.procs[name])
        self.procs.clear()

