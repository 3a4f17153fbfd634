"""Run the single-node engine's jobs locally: small batches without a JVM.

The local backend hands every ``arrow`` job here (:func:`start_routed`) and keeps the Spark
jobs. An arrow job runs ``spark_jobs.score_arrow`` **in the calling process** by default (the
Airflow task's worker process): ``benchmarks/bench_routing.py`` measures it against a plain
``python -m spark_jobs.score_arrow`` subprocess, which pays interpreter start and the pyiceberg,
pyarrow (and MLflow) imports per batch (and runs the staged code, as an EMR step does:
:mod:`warpspeed.compute.local.code`; in process, the worker's installed ``spark_jobs`` runs).
Each job is isolated: an exception fails that job only. A crash of the whole task cannot leave
half a write: the batch's overwrite is one atomic Iceberg commit, so either every slice of the
batch changed or none did, and a retry reruns it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from warpspeed.compute.base import SparkJob, StepStatus
from warpspeed.compute.emr.steps import catalog_args
from warpspeed.config.catalog_secrets import pyiceberg_env
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.jobs import job_code_root

log = logging.getLogger(__name__)

ARROW = "arrow"
IN_PROCESS = True
"""Run arrow jobs in the worker process (measured faster than a subprocess, see the module doc)."""


def _option(args: Sequence[str], name: str, default: str) -> str:
    return args[args.index(name) + 1] if name in args else default


def run_in_process(settings: WarpSpeedSettings, job: SparkJob, log_path: Path) -> tuple[int, str | None]:
    """Score ``job``'s batch in this process; return (exit code, failure reason)."""
    from spark_jobs.score_arrow import exit_code, score_manifest

    with log_path.open("w", encoding="utf-8") as out:
        try:
            code, summary = score_manifest(
                _option(job.args, "--batch-manifest", ""), _option(job.args, "--catalog", settings.catalog.name),
                settings.catalog.pyiceberg_properties(),
            )
        except Exception as err:  # one failing batch never fails its neighbours
            out.write(traceback.format_exc())
            return 1, f"{type(err).__name__}: {err}"
        reason = exit_code(summary)[1]
        out.write(f"WARPSPEED_RESULT {summary['batch_id']} {summary['status']} rows={summary['rows']}\n{reason or ''}")
        return code, reason


def run_subprocess(settings: WarpSpeedSettings, job: SparkJob, log_path: Path) -> tuple[int, str | None]:
    """Score ``job``'s batch with ``python -m spark_jobs.score_arrow``; return (exit code, failure reason)."""
    from warpspeed.compute.local.code import staged_code

    # secrets (the embedded catalog's token) go through the environment, not the command line
    public, secret_env = pyiceberg_env(settings.catalog.name, settings.catalog.pyiceberg_properties())
    command = [sys.executable, "-m", "spark_jobs.score_arrow", *job.args, *catalog_args(public)]
    path = os.pathsep.join(filter(None, (str(staged_code(settings)), str(job_code_root()),
                                         os.environ.get("PYTHONPATH"))))
    with log_path.open("w", encoding="utf-8") as out:
        proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, text=True, check=False,
                              env=os.environ | secret_env | {"PYTHONPATH": path})
    if proc.returncode == 0:
        return 0, None
    lines = log_path.read_text(encoding="utf-8").splitlines()
    return proc.returncode, next((t for t in reversed(lines) if "Error" in t or "Exception" in t),
                                 f"exit {proc.returncode}")


def run_arrow_jobs(settings: WarpSpeedSettings, jobs: Sequence[SparkJob], *,
                   in_process: bool | None = None) -> list[StepStatus]:
    """Run each arrow job to completion, one after another; return final statuses in order.

    :param in_process: run in this process (default: :data:`IN_PROCESS`) or as a subprocess.
    """
    logs_dir = settings.home / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    runner = run_in_process if (IN_PROCESS if in_process is None else in_process) else run_subprocess
    statuses = []
    for job in jobs:
        log_path = logs_dir / f"{job.name}.log"
        job_id = f"local-arrow-{job.name}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        started = time.monotonic()
        code, reason = runner(settings, job, log_path)
        seconds = time.monotonic() - started
        state = "COMPLETED" if code == 0 else "FAILED"
        statuses.append(StepStatus(job_id, job.name, state, reason, log_file=log_path.as_uri(), seconds=seconds))
        if code == 0:
            log.info("arrow %s succeeded in %.2f s (single-node engine)", job.name, seconds)
        else:
            log.error("arrow %s failed after %.2f s: %s (log %s)", job.name, seconds, reason, log_path)
    return statuses


def start_routed(
    settings: WarpSpeedSettings, jobs: Sequence[SparkJob], run_spark: Callable[[Sequence[SparkJob]], list[StepStatus]]
) -> list[StepStatus]:
    """Run the arrow jobs here while ``run_spark`` runs the others; return statuses in ``jobs`` order.

    The Spark jobs start first, in a thread, so the single-node batches score while Spark runs.
    """
    arrow = [j for j in jobs if j.engine == ARROW]
    spark = [j for j in jobs if j.engine != ARROW]
    if not spark:
        return run_arrow_jobs(settings, arrow)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="warpspeed-spark") as pool:
        spark_done = pool.submit(run_spark, spark)
        done = iter(run_arrow_jobs(settings, arrow))
        rest = iter(spark_done.result())
    return [next(done) if j.engine == ARROW else next(rest) for j in jobs]
