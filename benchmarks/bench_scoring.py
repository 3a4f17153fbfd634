"""Scoring throughput: 10M account rows through local Spark + Iceberg vs NumPy on the same data.

Spark side: ``spark_jobs/score_batch.py`` via ``spark-submit`` (read features from Iceberg,
score with Spark SQL expressions, overwrite the slices in the Iceberg scores table). NumPy side:
the same model math on the same feature arrays already in memory — the physical floor here.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_jobs.models import parse_model
from warpspeed.compute.base import SparkJob
from warpspeed.compute.local import LocalSparkBackend
from warpspeed.embedded.seed import publish_seed_models
from warpspeed.embedded.stack import scratch_settings
from warpspeed.manifests import BatchManifest, WindowLayout, models_uri
from warpspeed.operators.scoring import SCORE_SCRIPT
from warpspeed.request_schema import ScoringRequest
from warpspeed.storage import storage_for
from warpspeed.tables import FEATURE_COLUMNS, FEATURES_TABLE, ensure_tables

ROWS = int(os.environ.get("WARPSPEED_BENCH_SCORING_ROWS", "10000000"))
TENANTS = 100


def features(rng: np.random.Generator, tenant: int, n: int) -> pa.Table:
    ids = pc.binary_join_element_wise(pa.scalar(f"t{tenant:03d}-a"), pc.cast(pa.array(np.arange(n)), pa.string()), "")
    cols = {
        "engagement_7d": rng.poisson(4.0, n).astype(float),
        "engagement_30d": rng.poisson(15.0, n).astype(float),
        "intent_score": rng.uniform(0, 100, n),
        "employee_count": np.round(rng.lognormal(4.5, 1.2, n)),
        "annual_revenue": np.round(rng.lognormal(14.0, 1.5, n)),
    }
    data = {"tenant_id": pa.array([f"bench-{tenant:03d}"] * n, pa.string()), "account_id": ids}
    for name in FEATURE_COLUMNS:
        arr = cols[name]
        mask = rng.random(n) < 0.03
        data[name] = pa.array(arr, pa.float64(), mask=mask)
    data["updated_at"] = pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))
    return pa.table(data)


def numpy_score(model_doc: str, table: pa.Table) -> tuple[np.ndarray, float]:
    """Score with NumPy: the same terms, imputation and sigmoid; return (scores, seconds)."""
    model = parse_model(model_doc)
    arrays = {t.name: table.column(t.name).to_numpy(zero_copy_only=False) for t in model.terms}
    started = time.perf_counter()
    z = np.full(table.num_rows, model.intercept)
    for term in model.terms:
        x = np.where(np.isnan(arrays[term.name]), term.impute, arrays[term.name])
        if term.transform == "log1p":
            x = np.log1p(x)
        elif term.transform == "standardize":
            x = (x - term.mean) / term.std
        z += term.coefficient * x
    scores = 1.0 / (1.0 + np.exp(-z))
    return scores, time.perf_counter() - started


def run() -> Iterator[dict]:
    """Write ROWS feature rows, score them both ways, report rows per second and the ratio."""
    with scratch_settings() as settings:
        catalog = settings.catalog.load()
        ensure_tables(catalog)
        publish_seed_models(settings.storage_prefix)
        table = catalog.load_table(FEATURES_TABLE)
        rng = np.random.default_rng(3)
        per_tenant = ROWS // TENANTS
        written = []
        for tenant in range(TENANTS):
            part = features(rng, tenant, per_tenant).cast(table.schema().as_arrow())
            written.append(part)
            if len(written) == 10:
                table.append(pa.concat_tables(written))
                written = []
        if written:
            table.append(pa.concat_tables(written))

        storage = storage_for(settings.storage_prefix)
        model_doc = storage.read_text(f"{models_uri(settings.storage_prefix)}/churn_risk/v1.json")
        all_rows = catalog.load_table(FEATURES_TABLE).scan().to_arrow()
        _, numpy_s = numpy_score(model_doc, all_rows)
        numpy_rate = all_rows.num_rows / numpy_s
        del all_rows

        layout = WindowLayout(settings.storage_prefix, "bench")
        members = tuple(
            ScoringRequest(f"r{t}", f"bench-{t:03d}", "churn_risk", "v1", "scoring",
                           "2026-11-20T21:00:00+00:00", estimated_accounts=per_tenant)
            for t in range(TENANTS)
        )
        manifest = BatchManifest("bench", "bench", "scoring", members, ROWS, models_uri(settings.storage_prefix),
                                 layout.summary_uri("bench"))
        storage.write_text(layout.batch_uri("bench"), manifest.to_json())
        backend = LocalSparkBackend(settings)
        job = SparkJob("bench-scoring", SCORE_SCRIPT, ("--batch-manifest", layout.batch_uri("bench")),
                       conf={"spark.driver.memory": "6g"})
        (outcome,) = backend.run_jobs(backend.ensure_cluster("scoring", "scoring"), [job])
        if not outcome.succeeded:
            raise RuntimeError(f"scoring failed: {outcome.reason} ({outcome.log_uri})")
        summary = json.loads(storage.read_text(layout.summary_uri("bench")))
    spark_rate = summary["rows"] / summary["duration_s"]
    yield {"name": "scoring_rows_per_s", "value": round(spark_rate), "unit": "rows/s",
           "note": f"{summary['rows']} rows: Iceberg read + score + Iceberg overwrite inside the Spark job "
                   f"({summary['duration_s']:.1f} s; {outcome.seconds:.1f} s with JVM start), local[*] on "
                   f"{os.cpu_count()} cores"}
    yield {"name": "numpy_rows_per_s", "value": round(numpy_rate), "unit": "rows/s",
           "note": "same model math on the same feature arrays already in memory (no I/O)"}
    yield {"name": "scoring_vs_numpy", "value": round(spark_rate / numpy_rate, 4), "unit": "ratio",
           "note": "Spark end-to-end rate / NumPy in-memory rate"}
