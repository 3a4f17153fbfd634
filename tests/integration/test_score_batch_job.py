"""``spark_jobs/score_batch.py`` through ``spark-submit`` on the embedded Iceberg catalog."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.expressions import In

from warpspeed.compute.base import SparkJob
from warpspeed.compute.local.backend import LocalSparkBackend
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.intake.schema import ScoringRequest
from warpspeed.ledger.tables import SCORES_TABLE
from warpspeed.operators.score import SCORE_SCRIPT
from warpspeed.window.manifests import BatchManifest, WindowLayout, models_uri

REPO_WORKLOADS = Path(__file__).parents[2] / "dags" / "config" / "workloads.yaml"

TENANTS = ["job-t0", "job-t1", "job-t2"]


@pytest.fixture(scope="module")
def job_settings(scoring_home: Callable[[list[str]], WarpSpeedSettings]) -> WarpSpeedSettings:
    return scoring_home(TENANTS)


def run_batch(settings: WarpSpeedSettings, batch_id: str, members: list[tuple[str, str, str]],
              succeeds: bool = True, job_name: str | None = None) -> dict[str, Any]:
    layout = WindowLayout(settings.storage_prefix, "20261120T2100Z")
    requests = tuple(
        ScoringRequest(f"{batch_id}-{i}", t, m, v, "scoring", "2026-11-20T21:00:00+00:00", estimated_accounts=50)
        for i, (t, m, v) in enumerate(members)
    )
    registry = models_uri(settings.storage_prefix)
    manifest = BatchManifest(batch_id, "20261120T2100Z", "scoring", requests, 50 * len(requests),
                             registry, layout.summary_uri(batch_id),
                             **WorkloadCatalog.load(REPO_WORKLOADS)["scoring"].manifest_fields(registry))
    storage = settings.storage()
    storage.write_text(layout.batch_uri(batch_id), manifest.to_json())
    backend = LocalSparkBackend(settings)
    cluster = backend.ensure_cluster("scoring", "scoring")
    job = SparkJob(job_name or f"test-{batch_id}", SCORE_SCRIPT, ("--batch-manifest", layout.batch_uri(batch_id)))
    (outcome,) = backend.run_jobs(cluster, [job])
    assert outcome.succeeded is succeeds, Path(outcome.log_uri.removeprefix("file://")).read_text()[-3000:]
    return dict(json.loads(storage.read_text(layout.summary_uri(batch_id))))


def scores(settings: WarpSpeedSettings) -> list[dict[str, Any]]:
    table = settings.catalog.load().load_table(SCORES_TABLE)
    return sorted(table.scan(row_filter=In("tenant_id", TENANTS)).to_arrow().to_pylist(),
                  key=lambda r: (r["tenant_id"], r["model"], r["account_id"]))


def accounts(settings: WarpSpeedSettings) -> Counter[str]:
    table = settings.catalog.load().load_table("features.account_features")
    return Counter(table.scan(selected_fields=("tenant_id",)).to_arrow().column("tenant_id").to_pylist())


def test_batches_write_exactly_their_slices_and_reruns_are_idempotent(job_settings: WarpSpeedSettings) -> None:
    per_tenant = accounts(job_settings)
    first = run_batch(job_settings, "batch-a", [("job-t0", "churn_risk", "v1"), ("job-t1", "churn_risk", "v1"),
                                               ("job-t1", "upsell_propensity", "v1")])
    assert first["status"] == "succeeded"
    assert first["rows"] == per_tenant["job-t0"] + 2 * per_tenant["job-t1"]
    assert first["features_snapshot_id"] and first["scores_snapshot_id"]
    after_a = scores(job_settings)
    assert Counter((r["tenant_id"], r["model"]) for r in after_a) == {
        ("job-t0", "churn_risk"): per_tenant["job-t0"],
        ("job-t1", "churn_risk"): per_tenant["job-t1"],
        ("job-t1", "upsell_propensity"): per_tenant["job-t1"],
    }
    assert all(0.0 < r["score"] < 1.0 and r["batch_id"] == "batch-a" for r in after_a)

    run_batch(job_settings, "batch-b", [("job-t2", "churn_risk", "v1")])
    after_b = scores(job_settings)
    untouched = [r for r in after_b if r["tenant_id"] != "job-t2"]
    assert untouched == after_a  # another batch never touches tenants outside its manifest

    # the same batch run again by a job of another name (one of the first job's name is that job, done already)
    rerun = run_batch(job_settings, "batch-a", [("job-t0", "churn_risk", "v1"), ("job-t1", "churn_risk", "v1"),
                                               ("job-t1", "upsell_propensity", "v1")], job_name="test-batch-a-rerun")
    after_rerun = scores(job_settings)
    key = lambda r: (r["tenant_id"], r["model"], r["account_id"], round(r["score"], 12))  # noqa: E731
    assert sorted(map(key, after_rerun)) == sorted(map(key, after_b))
    assert len(after_rerun) == len({(r["tenant_id"], r["model"], r["account_id"]) for r in after_rerun})
    assert rerun["scores_snapshot_id"] != first["scores_snapshot_id"]


def test_unknown_model_version_fails_that_member_only(job_settings: WarpSpeedSettings) -> None:
    run_batch(job_settings, "batch-c0", [("job-t0", "churn_risk", "v1")])
    before = [r for r in scores(job_settings) if (r["tenant_id"], r["model"]) == ("job-t0", "churn_risk")]
    summary = run_batch(
        job_settings, "batch-c", [("job-t0", "churn_risk", "v9"), ("job-t0", "upsell_propensity", "v1")],
        succeeds=False,  # issue 13 item 4: a partial batch is not a success
    )
    assert summary["status"] == "partial"
    failed = [m for m in summary["members"] if m["status"] == "failed"]
    assert len(failed) == 1 and "churn_risk v9 not found" in failed[0]["error"]
    after = scores(job_settings)
    assert [r for r in after if (r["tenant_id"], r["model"]) == ("job-t0", "churn_risk")] == before
    assert sum(1 for r in after if (r["tenant_id"], r["model"]) == ("job-t0", "upsell_propensity")) == (
        accounts(job_settings)["job-t0"]
    )
