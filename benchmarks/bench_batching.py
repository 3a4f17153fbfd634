"""The headline: the same requests scored one Spark run per request vs Warp Speed's batches.

The per-request side is the plain way: ``spark_jobs/score_batch.py`` through one
``spark-submit`` per request, one after another, sampled (SAMPLE runs, each one request) and
extrapolated to all requests. The batched side runs every planned batch for real through the
local backend as the product runs it: planned, routed by size (small batches to the
single-node Arrow engine in process, the rest to the warm local Spark engine), on the engine
earlier windows left warm, as every window after the first finds it (``batching_speedup``).
Before it, the same batches forced onto Spark: in the window that starts the warm engine
(``_spark_cold``) and in the next one (``_spark_warm``). All sides use the same Iceberg tables in the same run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from warpspeed.compute.local.backend import LocalSparkBackend
from warpspeed.compute.local.engine import stop_engine
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.embedded.seed import (
    feature_rows,
    publish_seed_models,
    scoring_requests,
    tenant_ids,
    write_features,
)
from warpspeed.embedded.stack import scratch_settings
from warpspeed.intake.schema import ScoringRequest
from warpspeed.ledger.tables import ensure_tables
from warpspeed.operators.score import score_job
from warpspeed.planning.batches import dedupe_latest, plan_window
from warpspeed.planning.routing import SPARK, route_plan
from warpspeed.window.manifests import BatchManifest, WindowLayout, models_uri

TENANTS = int(os.environ.get("WARPSPEED_BENCH_BATCHING_TENANTS", "40"))
REQUESTS = int(os.environ.get("WARPSPEED_BENCH_BATCHING_REQUESTS", "120"))
SAMPLE = int(os.environ.get("WARPSPEED_BENCH_BATCHING_SAMPLE", "3"))
"""Requests over tenants, and how many of them run one spark-submit each (the smoke run uses a few)."""
REPO_ROOT = Path(__file__).resolve().parents[1]
"""This checkout: the benchmark passes the bundle's config and jars explicitly."""


def run() -> Iterator[dict]:
    """Time batched runs for all requests and sampled single-request runs; report the ratio."""
    with scratch_settings() as settings:
        catalog = settings.catalog.load()
        ensure_tables(catalog)
        publish_seed_models(settings.storage_prefix, settings.storage())
        tenants = tenant_ids(TENANTS)
        write_features(catalog, feature_rows(tenants))
        requests, _ = dedupe_latest(
            ScoringRequest.from_dict(d) for d in scoring_requests(tenants, REQUESTS)
        )
        workloads = WorkloadCatalog.load(REPO_ROOT / "dags" / "config" / "workloads.yaml")
        storage = settings.storage()
        backend = LocalSparkBackend(settings)  # the product's local backend: the warm engine
        plain = LocalSparkBackend(settings, warm=False)  # one spark-submit per job
        cluster = backend.ensure_cluster("scoring", "scoring")

        def run_batches(window: str, groups: list[tuple[str, tuple[ScoringRequest, ...], str]],
                        runner: LocalSparkBackend, one_by_one: bool = False) -> float:
            layout = WindowLayout(settings.storage_prefix, window)
            jobs = []
            for batch_id, members, engine in groups:
                registry = models_uri(settings.storage_prefix)
                manifest = BatchManifest(batch_id, window, members[0].workload, members,
                                         sum(m.estimated_accounts for m in members),
                                         registry, layout.summary_uri(batch_id),
                                         engine=engine, **workloads[members[0].workload].manifest_fields(registry))
                storage.write_text(layout.batch_uri(batch_id), manifest.to_json())
                job = score_job(layout.batch_uri(batch_id), f"bench-{window}-{batch_id}", settings.catalog.name, engine)
                jobs.append(job)
            started = time.perf_counter()
            for chunk in ([[j] for j in jobs] if one_by_one else [jobs]):
                outcomes = runner.run_jobs(cluster, chunk)
                assert all(o.succeeded for o in outcomes), [o.reason for o in outcomes]
            return time.perf_counter() - started

        try:
            plan = route_plan(plan_window("batched", requests, workloads.planning()), workloads)
            batches = [(b.batch_id, b.members, SPARK) for b in plan.batches]
            cold_s = run_batches("first", batches, backend)
            batched_s = run_batches("batched", batches, backend)
            routed_s = run_batches("routed", [(b.batch_id, b.members, b.engine) for b in plan.batches], backend)
            stop_engine(settings.home)  # the plain side runs without an engine beside it
            sample = requests[:: max(1, len(requests) // SAMPLE)][:SAMPLE]
            single_s = run_batches("single", [(f"single-{r.request_id[-8:]}", (r,), SPARK) for r in sample],
                                   plain, one_by_one=True)
        finally:
            stop_engine(settings.home)
    per_request_s = single_s / len(sample) * len(requests)
    rows = sum(r.estimated_accounts for r in requests)
    stamp = datetime.now(UTC).strftime("%H:%M")
    engines = sorted({b.engine for b in plan.batches})
    yield {"name": "batching_speedup", "value": round(per_request_s / routed_s, 2), "unit": "x",
           "note": f"{len(requests)} requests ({rows} account-rows, {TENANTS} tenants): Warp Speed's "
                   f"{len(plan.batches)} batches as the product runs them (planned, routed to {'/'.join(engines)} "
                   f"by size, on the warm engine an earlier window left, as every window after the first finds it) "
                   f"took {routed_s:.1f} s; one spark-submit per request, one after another, extrapolated from "
                   f"{len(sample)} sampled runs ({single_s / len(sample):.1f} s each) to {per_request_s:.0f} s "
                   f"({stamp})"}
    yield {"name": "batching_speedup_spark_warm", "value": round(per_request_s / batched_s, 2), "unit": "x",
           "note": f"the same batches all forced onto Spark, on the warm local engine an earlier window used: "
                   f"{batched_s:.1f} s"}
    yield {"name": "batching_speedup_spark_cold", "value": round(per_request_s / cold_s, 2), "unit": "x",
           "note": f"the same batches forced onto Spark in the window that starts the warm engine: {cold_s:.1f} s"}
    yield {"name": "batching_requests_per_min", "value": round(len(requests) / routed_s * 60, 1),
           "unit": "requests/min", "note": "batched side, as the product routes it"}
