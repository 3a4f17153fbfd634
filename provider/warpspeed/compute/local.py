"""The embedded compute backend: run ``spark_jobs/`` scripts with ``spark-submit`` locally.

Synchronous: :meth:`LocalSparkBackend.start` runs every job to completion (one after another)
and returns final statuses, so operators complete without deferring.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from warpspeed.compute.base import ClusterRef, ComputeBackend, SparkJob, StepStatus
from warpspeed.compute.staging import package_spark_jobs, spark_jobs_script
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.settings import WarpSpeedSettings

log = logging.getLogger(__name__)

REQUIRED_JARS = ("iceberg-spark-runtime-3.5_2.12-*.jar", "sqlite-jdbc-*.jar")
LOCAL_SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
}


def spark_submit_path() -> Path:
    """Return the ``spark-submit`` shipped with the installed pyspark."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "bin" / "spark-submit"


def find_jars(jars_dir: Path) -> list[Path]:
    """Return the jars local Spark needs, or say how to fetch them."""
    found = []
    for pattern in REQUIRED_JARS:
        matches = sorted(jars_dir.glob(pattern))
        if not matches:
            raise WarpSpeedConfigError(
                f"no {pattern} in {jars_dir}: run `make setup` (fetches the Iceberg Spark runtime and "
                "the SQLite JDBC driver with Maven) or point [warpspeed] jars_dir at them"
            )
        found.append(matches[-1])
    return found


class LocalSparkBackend(ComputeBackend):
    """Run jobs one after another with ``spark-submit --master local[*]``."""

    name = "local"

    def __init__(self, settings: WarpSpeedSettings) -> None:
        self.settings = settings
        self._running: dict[str, subprocess.Popen[str]] = {}

    def ensure_cluster(self, workload: str, profile: str) -> ClusterRef:
        """Check that local Spark can run (jars, Java) and return the local "cluster"."""
        find_jars(self.settings.jars_dir)
        if not spark_submit_path().exists():
            raise WarpSpeedConfigError("pyspark's spark-submit is missing: reinstall pyspark 3.5")
        return ClusterRef(workload=workload, cluster_id=f"local:{profile}", backend=self.name, created=False)

    def command(self, job: SparkJob, py_files: Path) -> list[str]:
        """Return the ``spark-submit`` command line for ``job``."""
        conf = LOCAL_SPARK_CONF | self.settings.catalog.spark_conf() | job.conf
        cmd = [
            str(spark_submit_path()),
            "--master", self.settings.spark_master,
            "--name", job.name,
            "--jars", ",".join(str(j) for j in find_jars(self.settings.jars_dir)),
            "--py-files", str(py_files),
        ]
        for key, value in sorted(conf.items()):
            cmd += ["--conf", f"{key}={value}"]
        return [*cmd, str(spark_jobs_script(job.script)), *job.args]

    def start(
        self, cluster: ClusterRef, jobs: Sequence[SparkJob], *, on_demand_only: bool = False
    ) -> list[StepStatus]:
        """Run each job to completion, logging progress; a failed job does not stop the rest."""
        if any(j.engine == "arrow" for j in jobs):  # small batches: the single-node engine, no JVM
            from warpspeed.compute.arrow_local import start_routed

            return start_routed(self.settings, jobs, lambda spark_jobs: self.start(cluster, spark_jobs))
        py_files = package_spark_jobs(self.settings.home / "build" / "spark_jobs.zip")
        logs_dir = self.settings.home / "logs"
        logs_dir.mkdir(parents=True, exist_ok=True)
        env = os.environ | {"PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
        statuses = []
        for index, job in enumerate(jobs, start=1):
            log_path = logs_dir / f"{job.name}.log"
            job_id = f"local-{job.name}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
            log.info("[%d/%d] spark-submit %s (log: %s)", index, len(jobs), job.name, log_path)
            started = time.monotonic()
            tail: deque[str] = deque(maxlen=30)
            with log_path.open("w", encoding="utf-8") as log_file:
                proc = subprocess.Popen(
                    self.command(job, py_files), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True, env=env,
                )
                self._running[job_id] = proc
                assert proc.stdout is not None
                for line in proc.stdout:
                    log_file.write(line)
                    tail.append(line.rstrip())
                    if line.startswith("WARPSPEED_"):
                        log.info("%s", line.rstrip())
                returncode = proc.wait()
                self._running.pop(job_id, None)
            seconds = time.monotonic() - started
            if returncode == 0:
                statuses.append(StepStatus(job_id, job.name, "COMPLETED", log_file=log_path.as_uri(), seconds=seconds))
                log.info("[%d/%d] %s succeeded in %.1f s", index, len(jobs), job.name, seconds)
            else:
                reason = next((t for t in reversed(tail) if "Error" in t or "Exception" in t), f"exit {returncode}")
                statuses.append(
                    StepStatus(job_id, job.name, "FAILED", reason, log_file=log_path.as_uri(), seconds=seconds)
                )
                log.error("[%d/%d] %s failed after %.1f s: %s\n%s", index, len(jobs), job.name, seconds,
                          reason, "\n".join(tail))
        return statuses

    def cancel(self, cluster: ClusterRef, job_ids: Sequence[str]) -> None:
        """Stop the ``spark-submit`` processes this backend is running."""
        for job_id in list(job_ids) or list(self._running):
            proc = self._running.get(job_id)
            if proc is not None and proc.poll() is None:
                log.warning("Stopping %s (pid %d)", job_id, proc.pid)
                proc.terminate()
