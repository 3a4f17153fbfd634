"""Scoring throughput: 10M account rows through the Spark job vs a plain single-node peer.

Both sides score the same feature table into the same (tenant, model) slices, in this one run:

- Spark: ``spark_jobs/score_batch.py`` via ``spark-submit`` (read features from Iceberg, score
  with Spark SQL expressions, overwrite the slices in the Iceberg scores table). Its rate uses
  the job's own timing (``duration_s`` of the result summary: JVM start and session creation
  excluded, as for every ``score_*`` figure).
- Peer (:mod:`plain_peer`): pyiceberg scan, NumPy score of the same model, pyiceberg overwrite of
  the same slices, no tuning, run first.

``scoring_vs_arrow`` is the Spark rate over the peer's rate (issue 16 target: >= 0.8).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from plain_peer import plain_run

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
        model = parse_model(storage.read_text(f"{models_uri(settings.storage_prefix)}/churn_risk/v1.json"))

        def numpy_predict(rows: pa.Table) -> np.ndarray:
            return model.score_arrays({c: rows.column(c).to_numpy(zero_copy_only=False) for c in model.features})

        tenants = [f"bench-{t:03d}" for t in range(TENANTS)]
        peer_s = plain_run(catalog, "churn_risk", numpy_predict, tenants)

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
    peer_rate = summary["rows"] / peer_s
    yield {"name": "scoring_rows_per_s", "value": round(spark_rate), "unit": "rows/s",
           "note": f"{summary['rows']} rows: Iceberg read + score + Iceberg overwrite inside the Spark job "
                   f"({summary['duration_s']:.1f} s; {outcome.seconds:.1f} s with JVM start), local[*] on "
                   f"{os.cpu_count()} cores; phases {summary.get('timings_s')}"}
    yield {"name": "arrow_rows_per_s", "value": round(peer_rate), "unit": "rows/s",
           "note": f"plain single-node peer on the same table in the same run: pyiceberg scan, NumPy score, "
                   f"pyiceberg overwrite of the same slices ({peer_s:.1f} s)"}
    yield {"name": "scoring_vs_arrow", "value": round(spark_rate / peer_rate, 3), "unit": "ratio",
           "note": "Spark job rate (its own timing, JVM and session start excluded) / plain peer rate, "
                   "same table, same run; target >= 0.8"}
