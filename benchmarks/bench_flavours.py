"""Scoring throughput per model flavour: the Spark job vs the same job done plainly in one process.

For each flavour (``expression``, ``mlflow`` scikit-learn pipeline, ``spark_ml`` pipeline) the
same ROWS feature rows are scored twice into the same Iceberg scores slices:

- Spark: ``spark_jobs/score_batch.py`` on the warm local Spark engine, as the product's local
  backend runs it (Iceberg read, score, Iceberg overwrite of the batch's slices); the rate uses
  the job's own timing (engine start excluded).
- Plain: one Python process: pyiceberg read, the model's own predict (NumPy formula for the
  expression model, ``pyfunc.predict`` for MLflow, the pipeline on a local session for Spark
  ML), pyiceberg overwrite of the same slices.

Each side runs four times, alternating (plain, Spark, plain, Spark, ...).
``score_vs_native_<flavour>`` is the Spark rate over the plain rate of the median of runs 2-4
(target >= 0.5): the engine stays up across windows, so every window after the first finds it
past its first batch of a model. ``score_vs_native_<flavour>_first`` is the same ratio of the
first runs (the engine's first batch of that model; for the first flavour, its first job).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from plain_peer import plain_run, side_by_side

from spark_jobs.flavours import pick_score
from spark_jobs.models import parse_model
from warpspeed.compute.base import SparkJob
from warpspeed.compute.local.backend import LocalSparkBackend
from warpspeed.compute.local.engine import stop_engine
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.embedded.seed import feature_rows, publish_seed_models, tenant_ids, write_features
from warpspeed.embedded.stack import scratch_settings
from warpspeed.intake.schema import ScoringRequest
from warpspeed.ledger.tables import FEATURE_COLUMNS, FEATURES_TABLE, ensure_tables
from warpspeed.operators.score import SCORE_SCRIPT
from warpspeed.storage.documents import local_path
from warpspeed.window.manifests import BatchManifest, WindowLayout, models_uri

ROWS = int(os.environ.get("WARPSPEED_BENCH_FLAVOUR_ROWS", "2000000"))
TENANTS = 20
PEER_NOTE = ("Spark job rate (its own timing: JVM and session start excluded) / one-process rate (pyiceberg "
             "read, model loaded from the registry and its own predict, pyiceberg overwrite of the same slices), "
             "same table, same run")
MODELS = {"expression": "churn_risk", "mlflow": "upsell_propensity", "spark_ml": "fit_pipeline"}
#: which flavours to run (comma-separated), e.g. ``WARPSPEED_BENCH_FLAVOURS=expression`` while tuning one
FLAVOURS = os.environ.get("WARPSPEED_BENCH_FLAVOURS", ",".join(MODELS)).split(",")
#: measured runs of each side after the first (alternating plain, Spark); the suite's smoke run uses 1
STEADY = int(os.environ.get("WARPSPEED_BENCH_FLAVOUR_STEADY", "3"))


def save_pipeline(spark: Any, catalog: Any, uri: str) -> Any:
    """Train a small Spark ML pipeline (impute, assemble, logistic regression) and save it."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import Imputer, VectorAssembler
    from pyspark.sql import functions as F

    sample = catalog.load_table(FEATURES_TABLE).scan(limit=20_000).to_pandas()
    frame = spark.createDataFrame(sample[list(FEATURE_COLUMNS)]).withColumn(
        "label", (F.coalesce(F.col("intent_score"), F.lit(50.0)) > 50).cast("double"))
    imputed = [f"{c}_i" for c in FEATURE_COLUMNS]
    pipeline = Pipeline(stages=[
        Imputer(inputCols=list(FEATURE_COLUMNS), outputCols=imputed),
        VectorAssembler(inputCols=imputed, outputCol="features"),
        LogisticRegression(maxIter=10),
    ]).fit(frame)
    pipeline.write().overwrite().save(str(local_path(uri)))
    return pipeline


def predictors(spark: Any, settings: WarpSpeedSettings) -> dict[str, Any]:
    """Return flavour -> (arrow rows -> scores), each the model's own single-process predict.

    Like the job, each loads its model from the registry inside the timed run (the MLflow
    model with ``pyfunc.load_model``, the Spark ML pipeline with ``PipelineModel.load``).
    """
    storage = settings.storage()
    registry = models_uri(settings.storage_prefix)
    expression = parse_model(storage.read_text(f"{registry}/churn_risk/v1.json"))

    def expression_predict(rows: pa.Table) -> Any:
        return expression.score_arrays({c: rows.column(c).to_numpy(zero_copy_only=False)
                                         for c in expression.features})

    def mlflow_predict(rows: pa.Table) -> Any:
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(str(local_path(f"{registry}/upsell_propensity/v1")))
        return pick_score(model.predict(rows.select(list(FEATURE_COLUMNS)).to_pandas()), None, 1)

    def spark_ml_predict(rows: pa.Table) -> Any:
        from pyspark.ml import PipelineModel
        from pyspark.ml.functions import vector_to_array

        pipeline = PipelineModel.load(str(local_path(f"{registry}/fit_pipeline/v1")))
        frame = spark.createDataFrame(rows.select(list(FEATURE_COLUMNS)).to_pandas())
        out = pipeline.transform(frame).select(vector_to_array("probability")[1].alias("p")).toPandas()
        return out["p"].to_numpy()

    return {"expression": expression_predict, "mlflow": mlflow_predict, "spark_ml": spark_ml_predict}


def run() -> Iterator[dict]:
    """Score ROWS rows per flavour both ways; report the rates and their ratio."""
    from pyspark.sql import SparkSession

    with scratch_settings() as settings:
        catalog = settings.catalog.load()
        ensure_tables(catalog)
        publish_seed_models(settings.storage_prefix, settings.storage())
        tenants = tenant_ids(TENANTS)
        per_tenant = ROWS // TENANTS
        write_features(catalog, feature_rows(tenants, base=per_tenant, spread=1))
        registry = models_uri(settings.storage_prefix)
        spark = (SparkSession.builder.master("local[*]").appName("bench-flavours-plain")
                 .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                 .config("spark.driver.memory", "4g").getOrCreate())
        try:
            save_pipeline(spark, catalog, f"{registry}/fit_pipeline/v1")
            workload = WorkloadCatalog.from_dict({"workloads": {"bench": {"models": {
                "churn_risk": {"flavour": "expression"},
                "upsell_propensity": {"flavour": "mlflow", "output_index": 1},
                "fit_pipeline": {"flavour": "spark_ml"},
            }}}})["bench"]
            plain = predictors(spark, settings)
            storage = settings.storage()
            backend = LocalSparkBackend(settings)
            cluster = backend.ensure_cluster("bench", "scoring")
            layout = WindowLayout(settings.storage_prefix, "bench")

            def score(batch_id: str, model: str, batch_tenants: list[str]) -> tuple[Any, dict]:
                members = tuple(ScoringRequest(f"{batch_id}-{t}", t, model, "v1", "bench",
                                               "2026-11-21T08:00:00+00:00", estimated_accounts=per_tenant)
                                for t in batch_tenants)
                manifest = BatchManifest(batch_id, "bench", "bench", members, per_tenant * len(members), registry,
                                         layout.summary_uri(batch_id), **workload.manifest_fields(registry))
                storage.write_text(layout.batch_uri(batch_id), manifest.to_json())
                job = SparkJob(batch_id, SCORE_SCRIPT, ("--batch-manifest", layout.batch_uri(batch_id)),
                               conf={"spark.driver.memory": "4g"})
                (outcome,) = backend.run_jobs(cluster, [job])
                if not outcome.succeeded:
                    raise RuntimeError(f"{batch_id} scoring failed: {outcome.reason} ({outcome.log_uri})")
                return outcome, json.loads(storage.read_text(layout.summary_uri(batch_id)))

            for flavour, model in MODELS.items():
                if flavour not in FLAVOURS:
                    continue
                # Alternating, side by side: the first pair is the engine's first batch of this model
                # (its JIT still cold for the model's code paths); the median of the next STEADY
                # pairs is what later windows find: the headline, since the engine stays up across
                # windows (each side's median run is reported).
                runs = side_by_side(
                    lambda model=model, flavour=flavour: plain_run(catalog, model, plain[flavour], tenants),
                    lambda attempt, model=model, flavour=flavour: score(f"{attempt}-{flavour}", model, tenants),
                    STEADY)
                outcome, summary = runs.spark
                first, first_plain_s, plain_s = runs.first_spark[1], runs.first_plain_s, runs.plain_s
                spark_rate = runs.rate(summary)
                yield {"name": f"score_rows_per_s_{flavour}", "value": round(spark_rate), "unit": "rows/s",
                       "note": f"{summary['rows']} rows, {model}: Iceberg read + score + Iceberg overwrite in the "
                               f"Spark job on the warm local engine, median of its batches 2-{STEADY + 1} "
                               f"of this model and size "
                               f"({summary['duration_s']:.1f} s; {outcome.seconds:.1f} s as the task waited), "
                               f"local[*] on {os.cpu_count()} cores; plain process {plain_s:.1f} s "
                               f"(median of its runs 2-{STEADY + 1}); "
                               f"phases {summary.get('timings_s')}"}
                yield {"name": f"score_vs_native_{flavour}", "value": round(runs.ratio, 3),
                       "unit": "ratio", "note": PEER_NOTE + f"; median of runs 2-{STEADY + 1} of each"}
                yield {"name": f"score_vs_native_{flavour}_first", "value": round(runs.first_ratio, 3), "unit": "ratio",
                       "note": f"the same ratio for the first run of each (Spark {first['duration_s']:.1f} s, "
                               f"plain {first_plain_s:.1f} s): the engine's first batch of this model"}
        finally:
            stop_engine(settings.home)
            spark.stop()
