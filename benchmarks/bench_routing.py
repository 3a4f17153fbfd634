"""Right-size routing: a 5,000-row batch through the routed engine vs through the Spark job.

The batch (two tenants, the ``churn_risk`` expression model) is planned like any other: its
engine comes from :func:`warpspeed.planning.routing.engine_for` with the repo's workload
settings, and it runs through the local backend exactly as the scoring task runs it (manifest
read, Iceberg read at the pinned snapshot, score, one Iceberg overwrite commit, summary write).
Side by side in the same run, on the same table: the same manifest through the Spark job as
the local backend runs it (the warm local Spark engine; the first of the runs starts it), and
the routed engine as a plain ``python -m`` subprocess instead of in the worker process (why
the local backend runs it in process).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from warpspeed.compute.local import arrow as arrow_local
from warpspeed.compute.local.backend import LocalSparkBackend
from warpspeed.compute.local.engine import stop_engine
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.embedded.seed import feature_rows, publish_seed_models
from warpspeed.embedded.stack import scratch_settings
from warpspeed.intake.schema import ScoringRequest
from warpspeed.ledger.tables import FEATURES_TABLE, ensure_tables
from warpspeed.operators.score import score_job
from warpspeed.planning.routing import engine_for
from warpspeed.window.manifests import BatchManifest, WindowLayout, models_uri

ROWS = int(os.environ.get("WARPSPEED_BENCH_ROUTING_ROWS", "5000"))
RUNS = int(os.environ.get("WARPSPEED_BENCH_ROUTING_RUNS", "7"))
SPARK_RUNS = int(os.environ.get("WARPSPEED_BENCH_ROUTING_SPARK_RUNS", "3"))
WORKLOADS = Path(__file__).resolve().parents[1] / "dags" / "config" / "workloads.yaml"


def run() -> Iterator[dict]:
    """Score the same 5,000-row batch through both engines; yield medians and the ratio."""
    workload = WorkloadCatalog.load(WORKLOADS)["scoring"]
    engine = engine_for(ROWS, {"expression"}, workload.planning.single_node_max_rows)
    with scratch_settings() as settings:
        catalog = settings.catalog.load()
        ensure_tables(catalog)
        publish_seed_models(settings.storage_prefix, settings.storage())
        tenants = ["route-a", "route-b"]
        rows = feature_rows(tenants, base=ROWS // 2, spread=1)
        table = catalog.load_table(FEATURES_TABLE)
        table.append(rows.cast(table.schema().as_arrow()))
        registry = models_uri(settings.storage_prefix)
        layout = WindowLayout(settings.storage_prefix, "bench-routing")
        members = tuple(
            ScoringRequest(f"r{i}", t, "churn_risk", "v1", "scoring", "2026-11-21T10:00:00+00:00",
                           estimated_accounts=ROWS // 2)
            for i, t in enumerate(tenants)
        )
        manifest = BatchManifest("bench-routing", layout.window_id, "scoring", members, ROWS, registry,
                                 layout.summary_uri("bench-routing"), engine=engine,
                                 **workload.manifest_fields(registry))
        uri = layout.batch_uri(manifest.batch_id)
        storage = settings.storage()
        storage.write_text(uri, manifest.to_json())
        backend = LocalSparkBackend(settings)
        cluster = backend.ensure_cluster("scoring", "scoring")

        job_numbers = itertools.count()

        def timed(job_engine: str, runs: int) -> tuple[list[float], list[float]]:
            walls, in_job = [], []
            for _ in range(runs):
                # a name per run: the warm engine takes a completed job's name as that job, done already
                name = f"{manifest.batch_id}-{next(job_numbers)}"
                job = score_job(uri, name, settings.catalog.name, job_engine)
                (outcome,) = backend.run_jobs(cluster, [job])
                if not outcome.succeeded:
                    raise RuntimeError(f"{job_engine} run failed: {outcome.reason} ({outcome.log_uri})")
                summary = json.loads(storage.read_text(manifest.summary_uri))
                if summary["rows"] != ROWS:
                    raise RuntimeError(f"{job_engine} scored {summary['rows']} rows, expected {ROWS}")
                walls.append(outcome.seconds)
                in_job.append(summary["duration_s"])
            return walls, in_job

        routed, routed_in_job = timed(engine, RUNS)
        mlflow_members = tuple(replace(m, model="upsell_propensity") for m in members)
        storage.write_text(uri, replace(manifest, members=mlflow_members).to_json())
        mlflow, _ = timed(engine_for(ROWS, {"mlflow"}, workload.planning.single_node_max_rows), 3)
        storage.write_text(uri, manifest.to_json())
        original = arrow_local.IN_PROCESS
        arrow_local.IN_PROCESS = False
        try:
            sub, _ = timed(engine, max(3, RUNS // 2)) if engine == "arrow" else ([float("nan")], [])
        finally:
            arrow_local.IN_PROCESS = original
        try:
            spark, spark_in_job = timed("spark", SPARK_RUNS)
        finally:
            stop_engine(settings.home)
    median, spark_median = statistics.median(routed), statistics.median(spark)
    yield {"name": "routed_small_batch_s", "value": round(median, 3), "unit": "s",
           "note": f"median of {RUNS}: a {ROWS}-row batch routed to the {engine} engine, through the local "
                   f"backend (manifest, Iceberg read, score, Iceberg commit, summary); in-job read-to-commit "
                   f"median {statistics.median(routed_in_job):.3f} s; target <= 1.0"}
    yield {"name": "routed_small_batch_mlflow_s", "value": round(statistics.median(mlflow), 3), "unit": "s",
           "note": "median of 3: the same batch with the MLflow (scikit-learn) model, routed the same way; "
                   "includes the per-batch model download and one pyfunc load"}
    yield {"name": "routed_small_batch_subprocess_s", "value": round(statistics.median(sub), 3), "unit": "s",
           "note": "the same routed batch as a plain `python -m spark_jobs.score_arrow` subprocess "
                   "(interpreter start + imports per batch): why the local backend runs it in process"}
    yield {"name": "spark_small_batch_s", "value": round(spark_median, 3), "unit": "s",
           "note": f"median of {SPARK_RUNS}: the same manifest through the Spark job on the warm local engine "
                   f"(the first run starts it); in-job median {statistics.median(spark_in_job):.3f} s"}
    yield {"name": "routed_small_batch_speedup", "value": round(spark_median / median, 2), "unit": "ratio",
           "note": f"Spark job wall time / routed engine wall time for the same {ROWS:,}-row batch, same run"}
