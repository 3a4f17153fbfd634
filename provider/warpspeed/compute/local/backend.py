"""The embedded compute backend: run ``spark_jobs/`` scripts on local Spark.

Synchronous: :meth:`LocalSparkBackend.start` runs every job to completion, all of them at once,
and returns final statuses, so operators complete without deferring. A script that exposes
``run(spark, argv)`` runs on the warm engine of the state folder
(:mod:`warpspeed.compute.local.engine`: one long-lived SparkSession shared by every task and
window, no JVM start per job); other scripts, and every job when the engine is off
(``[warpspeed] local_spark_idle_seconds = 0``) or cannot take it, run with their own ``spark-submit``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from warpspeed.compute.base import ClusterRef, ComputeBackend, SparkJob, StepStatus
from warpspeed.compute.local.code import staged_code
from warpspeed.compute.local.engine import EngineHandle, EngineSpec, EngineUnavailable, ensure_engine
from warpspeed.compute.local.runs import EngineRun, EngineWatch, LocalRun, SubmitRun, wait_all
from warpspeed.compute.staging import spark_jobs_script
from warpspeed.config.catalog_secrets import properties_file_args, spark_secret_file
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.lineage.spark import local_listener, without_lineage

log = logging.getLogger(__name__)

REQUIRED_JARS = ("iceberg-spark-runtime-3.5_2.12-*.jar", "sqlite-jdbc-*.jar", "iceberg-aws-bundle-*.jar",
                 "hadoop-aws-*.jar", "aws-java-sdk-bundle-*.jar")
"""The Iceberg runtime, the SQLite JDBC driver, the AWS SDK v2 of Iceberg's ``S3FileIO`` (tables on
S3), and Hadoop's S3A file system with its AWS SDK v1 (``s3://`` documents and raw data read by the
jobs, as EMRFS serves them on EMR); hadoop-aws matches pyspark 3.5's Hadoop 3.3.4."""
ENGINE_COMPONENT = "score"
"""Who the warm engine is to S3 when it starts: its Hadoop S3A client (documents, raw data) signs
as this component for every job; each job's tables are read and written with its own component's
key (:meth:`LocalSparkBackend.component_conf`)."""
LOCAL_SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
}
RUN_ENTRY = re.compile(r"^def run\(spark\b", re.MULTILINE)
"""A script the warm engine can run defines ``run(spark, argv) -> int`` at module level."""


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
                f"no {pattern} in {jars_dir}: run `warpspeed setup` (fetches the Iceberg Spark runtime, the "
                "SQLite JDBC driver and the S3 clients with Maven) or point [warpspeed] jars_dir at them"
            )
        found.append(matches[-1])
    return found


class LocalSparkBackend(ComputeBackend):
    """Run jobs concurrently on the warm local Spark engine, or with ``spark-submit --master local[*]``.

    :param warm: use the warm engine (default: unless ``[warpspeed] local_spark_idle_seconds`` is 0).
    """

    name = "local"

    def __init__(self, settings: WarpSpeedSettings, *, warm: bool | None = None) -> None:
        self.settings = settings
        self.warm = settings.local_spark_idle_seconds > 0 if warm is None else warm
        self._running: dict[str, LocalRun] = {}

    def ensure_cluster(self, workload: str, profile: str) -> ClusterRef:
        """Check that local Spark can run (jars, Java) and return the local "cluster"."""
        find_jars(self.settings.jars_dir)
        if not spark_submit_path().exists():
            raise WarpSpeedConfigError("pyspark's spark-submit is missing: reinstall pyspark 3.5")
        return ClusterRef(workload=workload, cluster_id=f"local:{profile}", backend=self.name, created=False)

    @cached_property
    def listener(self) -> tuple[Path | None, dict[str, str]]:
        """Return the OpenLineage listener's jar and conf when lineage is on (:func:`.local_listener`)."""
        return local_listener(self.settings.jars_dir)

    def jars(self) -> list[Path]:
        """Return the jars of local runs: the required ones, plus the OpenLineage listener's when it is on."""
        jar = self.listener[0]
        return [*find_jars(self.settings.jars_dir), *([jar] if jar else [])]

    def spark_conf(self, job: SparkJob | None = None) -> dict[str, str]:
        """Return the Spark conf of local runs (plus the lineage listener's, and ``job``'s own)."""
        return LOCAL_SPARK_CONF | self.settings.catalog.spark_conf() | self.listener[1] | (job.conf if job else {})

    def component_conf(self) -> dict[str, str]:
        """Return the catalog settings that carry this backend's S3 key (what a warm engine job sets on its session)."""
        return {k: v for k, v in self.settings.catalog.spark_conf().items()
                if k.startswith("spark.sql.catalog.") and k.endswith((".s3.access-key-id", ".s3.secret-access-key"))}

    def command(self, job: SparkJob, py_files: Path) -> list[str]:
        """Return the ``spark-submit`` command line for ``job`` (its secrets in a private properties file)."""
        public, secrets_file = spark_secret_file(self.spark_conf(job), self.settings.home / "run")
        cmd = [
            str(spark_submit_path()),
            "--master", self.settings.spark_master,
            "--name", job.name,
            "--jars", ",".join(str(j) for j in self.jars()),
            "--py-files", str(py_files),
            *properties_file_args(secrets_file),
        ]
        for key, value in sorted(public.items()):
            cmd += ["--conf", f"{key}={value}"]
        return [*cmd, str(spark_jobs_script(job.script)), *job.args]

    def engine_spec(self, py_files: Path) -> EngineSpec:
        """Return what the warm engine of this backend runs with."""
        return EngineSpec(
            home=self.settings.home, master=self.settings.spark_master,
            jars=tuple(str(j) for j in self.jars()),
            conf=(LOCAL_SPARK_CONF | self.settings.catalog.for_component(ENGINE_COMPONENT).spark_conf()
                  | self.listener[1]),
            zip_path=py_files, idle_seconds=float(self.settings.local_spark_idle_seconds),
        )

    def start(
        self, cluster: ClusterRef, jobs: Sequence[SparkJob], *, on_demand_only: bool = False
    ) -> list[StepStatus]:
        """Run every job to completion, all at once, logging progress; a failed job does not stop the rest."""
        if any(j.engine == "arrow" for j in jobs):  # small batches: the single-node engine, no JVM
            from warpspeed.compute.local.arrow import start_routed

            return start_routed(self.settings, jobs, lambda spark_jobs: self.start(cluster, spark_jobs))
        py_files = staged_code(self.settings)
        logs_dir = self.settings.home / "logs"
        logs_dir.mkdir(parents=True, exist_ok=True)
        engine = self._engine(py_files, jobs)
        watch = EngineWatch(engine) if engine is not None else None
        runs: list[LocalRun] = []
        for index, job in enumerate(jobs, start=1):
            run = self._start_one(job, py_files, logs_dir / f"{job.name}.log", engine, watch)
            log.info("[%d/%d] %s %s as %s (log: %s)", index, len(jobs), job.name,
                     "on the warm Spark engine" if isinstance(run, EngineRun) else "spark-submit",
                     run.step_id, run.log_path)
            runs.append(run)
            self._running[run.step_id] = run
        try:
            return wait_all(runs)
        finally:
            for run in runs:
                self._running.pop(run.step_id, None)

    def _engine(self, py_files: Path, jobs: Sequence[SparkJob]) -> EngineHandle | None:
        if not self.warm or not any(RUN_ENTRY.search(spark_jobs_script(j.script).read_text()) for j in jobs):
            return None
        try:
            return ensure_engine(self.engine_spec(py_files))
        except EngineUnavailable as err:
            log.warning("%s; running with spark-submit instead", err)
            return None

    def _start_one(self, job: SparkJob, py_files: Path, log_path: Path, engine: EngineHandle | None,
                   watch: EngineWatch | None = None) -> LocalRun:
        if engine is not None and RUN_ENTRY.search(spark_jobs_script(job.script).read_text()):
            try:
                # one application for every task: its lineage parent cannot change per job
                conf = self.component_conf() | without_lineage(job.conf)
                return EngineRun(engine, engine.submit(job.name, job.script, list(job.args), conf, log_path), watch)
            except (EngineUnavailable, OSError) as err:
                log.warning("%s: %s; running with spark-submit instead", job.name, err)
        env = os.environ | {"PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
        step_id = f"local-{job.name}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        return SubmitRun(step_id, job.name, self.command(job, py_files), env, log_path)

    def cancel(self, cluster: ClusterRef, job_ids: Sequence[str]) -> None:
        """Stop the jobs this backend is running (warm engine job groups, ``spark-submit`` processes)."""
        for job_id in list(job_ids) or list(self._running):
            run = self._running.get(job_id)
            if run is not None:
                run.cancel()
