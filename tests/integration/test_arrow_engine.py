"""Both engines score one batch manifest into identical rows and identical summaries.

The same batch (several tenants, expression + MLflow models, nulls to impute, NaNs, values
that make ``log1p`` null in Spark SQL, a missing model version) is scored by the Spark job
through ``spark-submit`` and by the single-node Arrow engine, each into a scores table of its
own that the engine itself creates.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from spark_jobs.score_arrow import score_manifest
from warpspeed.compute.base import SparkJob
from warpspeed.compute.local.backend import LocalSparkBackend
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.embedded.seed import publish_seed_models
from warpspeed.intake.schema import ScoringRequest
from warpspeed.ledger.tables import FEATURE_COLUMNS
from warpspeed.operators.score import SCORE_SCRIPT, score_job
from warpspeed.storage.documents import join_uri
from warpspeed.window.manifests import BatchManifest, WindowLayout, models_uri

REPO_WORKLOADS = Path(__file__).parents[2] / "dags" / "config" / "workloads.yaml"
FEATURES = "arrowtest.features"
TENANTS = ["ar-t0", "ar-t1", "ar-t2", "ar-t3"]
EDGE_MODEL = {  # log1p over a column with values <= -1: Spark SQL's log1p is null there, the row is dropped
    "schema": "warpspeed.model/v1", "kind": "logistic", "model": "churn_risk", "version": "v2", "intercept": -0.3,
    "features": [
        {"name": "engagement_7d", "transform": "log1p", "coefficient": 0.7, "impute": 1.5},
        {"name": "intent_score", "transform": "standardize", "mean": 40.0, "std": 12.5, "coefficient": -0.9,
         "impute": 55.0},
        {"name": "annual_revenue", "coefficient": 1e-7, "impute": 0.0},
    ],
}


def features_table(settings: WarpSpeedSettings) -> None:
    """Write a features table keyed by a long account id: nulls, NaNs, negatives, a tenant with none."""
    import numpy as np
    from pyiceberg.schema import Schema
    from pyiceberg.types import DoubleType, LongType, NestedField, StringType

    rng = np.random.default_rng(11)
    tenants, ids, data = [], [], {c: [] for c in FEATURE_COLUMNS}  # type: dict[str, list[Any]]
    for index, tenant in enumerate(TENANTS[:3]):
        n = 300 + 170 * index
        tenants += [tenant] * n
        ids += list(range(index * 10_000, index * 10_000 + n))
        for column in FEATURE_COLUMNS:
            values = rng.normal(3.0, 4.0, n).tolist()
            for i in rng.choice(n, n // 10, replace=False):
                values[i] = None
            values[0] = float("nan")
            data[column] += values
    schema = Schema(NestedField(1, "tenant_id", StringType(), required=False),
                    NestedField(2, "account_id", LongType(), required=False),
                    *(NestedField(3 + i, c, DoubleType(), required=False) for i, c in enumerate(FEATURE_COLUMNS)))
    catalog = settings.catalog.load()
    catalog.create_namespace_if_not_exists("arrowtest")
    table = catalog.create_table_if_not_exists(FEATURES, schema)
    arrays = {"tenant_id": pa.array(tenants, pa.string()), "account_id": pa.array(ids, pa.int64()),
              **{c: pa.array(v, pa.float64(), from_pandas=False) for c, v in data.items()}}
    table.overwrite(pa.table(arrays).cast(table.schema().as_arrow()))


@pytest.fixture(scope="module")
def engine_settings(
    tmp_path_factory: pytest.TempPathFactory, rest_catalog_for: Callable[[Path], object]
) -> WarpSpeedSettings:
    home = tmp_path_factory.mktemp("arrow-home")
    rest_catalog_for(home)
    settings = WarpSpeedSettings.from_mapping({"home": str(home)})
    features_table(settings)
    publish_seed_models(settings.storage_prefix, settings.storage())
    settings.storage().write_text(
        join_uri(models_uri(settings.storage_prefix), "churn_risk", "v2.json"), json.dumps(EDGE_MODEL)
    )
    return settings


MEMBERS = [
    ("ar-t0", "churn_risk", "v1"), ("ar-t0", "upsell_propensity", "v1"),
    ("ar-t1", "churn_risk", "v2"), ("ar-t1", "upsell_propensity", "v9"),  # v9 does not exist
    ("ar-t2", "churn_risk", "v2"), ("ar-t3", "churn_risk", "v1"),  # ar-t3 has no features
]


def manifest_for(settings: WarpSpeedSettings, engine: str) -> tuple[str, BatchManifest]:
    layout = WindowLayout(settings.storage_prefix, f"20261121T1000Z-{engine}")
    requests = tuple(
        ScoringRequest(f"req-{i}", t, m, v, "scoring", "2026-11-21T10:00:00+00:00", estimated_accounts=500)
        for i, (t, m, v) in enumerate(MEMBERS)
    )
    registry = models_uri(settings.storage_prefix)
    fields = WorkloadCatalog.load(REPO_WORKLOADS)["scoring"].manifest_fields(registry)
    fields |= {"features_table": FEATURES, "scores_table": f"arrowtest.scores_{engine}"}
    manifest = BatchManifest("scoring-same-batch", layout.window_id, "scoring", requests, 3000, registry,
                             layout.summary_uri("scoring-same-batch"), **fields)
    uri = layout.batch_uri(manifest.batch_id)
    settings.storage().write_text(uri, manifest.to_json())
    return uri, manifest


def table_rows(settings: WarpSpeedSettings, engine: str) -> list[dict[str, Any]]:
    table = settings.catalog.load().load_table(f"arrowtest.scores_{engine}")
    rows = table.scan().to_arrow().drop_columns(["scored_at"]).to_pylist()
    return sorted(rows, key=lambda r: (r["tenant_id"], r["model"], r["account_id"]))


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items()
            if k not in ("scored_at", "duration_s", "timings_s", "scores_snapshot_id")}


def test_spark_and_arrow_write_identical_rows_and_summaries(engine_settings: WarpSpeedSettings) -> None:
    settings = engine_settings
    spark_uri, spark_manifest = manifest_for(settings, "spark")
    backend = LocalSparkBackend(settings)
    cluster = backend.ensure_cluster("scoring", "scoring")
    (outcome,) = backend.run_jobs(cluster, [SparkJob("arrowtest-spark", SCORE_SCRIPT, ("--batch-manifest", spark_uri))])
    assert not outcome.succeeded  # partial: the missing version fails its member (exit 3)
    spark_summary = json.loads(settings.storage().read_text(spark_manifest.summary_uri))

    arrow_uri, arrow_manifest = manifest_for(settings, "arrow")
    code, arrow_summary = score_manifest(arrow_uri, settings.catalog.name, settings.catalog.pyiceberg_properties())
    assert code == 3
    assert json.loads(settings.storage().read_text(arrow_manifest.summary_uri)) == arrow_summary

    assert arrow_summary["status"] == "partial"
    assert [m["status"] for m in arrow_summary["members"]] == ["scored"] * 3 + ["failed"] + ["scored"] * 2
    assert arrow_summary["tenants_without_features"] == ["ar-t3"]
    assert comparable(arrow_summary) | {"window_id": ""} == comparable(spark_summary) | {"window_id": ""}

    catalog = settings.catalog.load()
    spark_table, arrow_table = (catalog.load_table(f"arrowtest.scores_{e}") for e in ("spark", "arrow"))
    assert arrow_table.schema() == spark_table.schema()
    assert arrow_table.spec() == spark_table.spec()

    spark_rows, arrow_rows = table_rows(settings, "spark"), table_rows(settings, "arrow")
    assert len(arrow_rows) == len(spark_rows) > 0
    written = sum(1 for r in spark_rows if (r["tenant_id"], r["model"]) == ("ar-t1", "churn_risk"))
    assert 0 < written < spark_summary["members"][2]["rows"]  # log1p(x <= -1) rows are dropped by both
    assert any(r["score"] != r["score"] for r in spark_rows)  # a NaN feature (not null) is not imputed
    for mine, theirs in zip(arrow_rows, spark_rows, strict=True):
        assert {k: v for k, v in mine.items() if k != "score"} == {k: v for k, v in theirs.items() if k != "score"}
        if theirs["score"] != theirs["score"]:  # NaN features give NaN scores in both
            assert mine["score"] != mine["score"]
        else:
            assert mine["score"] == pytest.approx(theirs["score"], rel=1e-12, abs=1e-15)


def test_local_backend_runs_arrow_jobs_without_spark_and_isolates_a_failing_batch(
    engine_settings: WarpSpeedSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = engine_settings
    storage = settings.storage()
    good_uri, partial = manifest_for(settings, "arrow")
    members = tuple(m for m in partial.members if m.model_version != "v9")
    good = BatchManifest(**{**partial.__dict__, "members": members})
    storage.write_text(good_uri, good.to_json())
    broken = BatchManifest(**{**good.__dict__, "batch_id": "scoring-broken", "features_table": "arrowtest.nope",
                              "summary_uri": good.summary_uri.replace("same-batch", "broken")})
    broken_uri = good_uri.replace("same-batch", "broken")
    storage.write_text(broken_uri, broken.to_json())

    def no_spark(*args: object, **kwargs: object) -> None:
        raise AssertionError("an arrow job started spark-submit")

    monkeypatch.setattr("warpspeed.compute.local.runs.subprocess.Popen", no_spark)
    monkeypatch.setattr("warpspeed.compute.local.backend.ensure_engine", no_spark)
    backend = LocalSparkBackend(settings)
    cluster = backend.ensure_cluster("scoring", "scoring")
    jobs = [score_job(uri, m.batch_id, settings.catalog.name, "arrow")
            for uri, m in ((good_uri, good), (broken_uri, broken), (good_uri, good))]
    first, failed, last = backend.run_jobs(cluster, jobs)
    assert failed.state == "FAILED" and "arrowtest.nope" in (failed.reason or "")
    assert "churn_risk" not in (failed.reason or "")
    assert first.succeeded and last.succeeded  # its neighbours, before and after it, are unaffected
    assert json.loads(storage.read_text(good.summary_uri))["status"] == "succeeded"
    assert not storage.exists(broken.summary_uri)


def test_a_commit_conflict_with_a_writer_of_another_slice_is_retried(
    engine_settings: WarpSpeedSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer commits another tenant's slice between our read of the metadata and our commit.

    The REST catalog rejects our stale commit (409); it is re-applied on fresh metadata (pyiceberg
    0.12 retries a transaction itself, ``iceberg_retry.commit_with_retries`` re-runs the whole
    overwrite when that budget runs out), so both slices end up in the table.
    """
    from pyiceberg.table import Table

    settings = engine_settings
    storage = settings.storage()
    _, base = manifest_for(settings, "arrow")
    members = tuple(m for m in base.members if m.tenant_id == "ar-t0")
    manifest = BatchManifest(**{**base.__dict__, "batch_id": "conflict", "members": members,
                                "scores_table": "arrowtest.scores_conflict",
                                "summary_uri": base.summary_uri.replace("same-batch", "conflict")})
    uri = base.summary_uri.replace("results", "batches").replace("same-batch", "conflict")
    storage.write_text(uri, manifest.to_json())
    real_overwrite = Table.overwrite
    interfering: list[int] = []

    def overwrite(self: Table, df: pa.Table, *args: Any, **kwargs: Any) -> None:
        if not interfering:  # a concurrent writer of another slice commits first: our metadata is stale
            other = settings.catalog.load().load_table("arrowtest.scores_conflict")
            other.append(df.slice(0, 5).set_column(0, "tenant_id", pa.array(["other"] * 5, pa.string())))
            interfering.append(other.current_snapshot().snapshot_id)  # type: ignore[union-attr]
        real_overwrite(self, df, *args, **kwargs)

    monkeypatch.setattr(Table, "overwrite", overwrite)
    code, summary = score_manifest(uri, settings.catalog.name, settings.catalog.pyiceberg_properties())
    assert code == 0
    table = settings.catalog.load().load_table("arrowtest.scores_conflict")
    ours = table.snapshot_by_id(summary["scores_snapshot_id"])
    lineage = {ours.snapshot_id}  # type: ignore[union-attr]
    while ours is not None and ours.parent_snapshot_id is not None:
        lineage.add(ours.parent_snapshot_id)
        ours = table.snapshot_by_id(ours.parent_snapshot_id)
    assert interfering[0] in lineage  # our commit was re-based on the other writer's
    slices = Counter((r["tenant_id"], r["model"]) for r in table.scan().to_arrow().to_pylist())
    assert slices[("other", "churn_risk")] == 5  # the other writer's slice survives our overwrite
    assert slices[("ar-t0", "upsell_propensity")] == summary["members"][1]["rows"] == 300
    assert slices[("ar-t0", "churn_risk")] > 0


TYPED = "arrowtest.typed_features"
INTENT_ONLY = {  # reads no string column: scored on both engines
    "schema": "warpspeed.model/v1", "kind": "logistic", "model": "churn_risk", "version": "v3", "intercept": 0.1,
    "features": [{"name": "intent_score", "coefficient": 0.02, "impute": 50.0},
                 {"name": "annual_revenue", "coefficient": 1e-7, "impute": 0.0}],
}


def typed_manifest(settings: WarpSpeedSettings, engine: str) -> tuple[str, BatchManifest]:
    """A batch over ``TYPED``, whose ``engagement_7d`` is a STRING column holding "5" and "abc"."""
    _, base = manifest_for(settings, engine)
    members = (("ty-t0", "churn_risk", "v1"), ("ty-t0", "upsell_propensity", "v1"), ("ty-t1", "churn_risk", "v3"))
    requests = tuple(ScoringRequest(f"ty-{i}", t, m, v, "scoring", "2026-11-21T10:00:00+00:00", estimated_accounts=3)
                     for i, (t, m, v) in enumerate(members))
    layout = WindowLayout(settings.storage_prefix, base.window_id)
    manifest = BatchManifest(**{**base.__dict__, "batch_id": f"typed-{engine}", "members": requests,
                                "features_table": TYPED, "scores_table": f"arrowtest.typed_scores_{engine}",
                                "summary_uri": layout.summary_uri(f"typed-{engine}")})
    uri = layout.batch_uri(manifest.batch_id)
    settings.storage().write_text(uri, manifest.to_json())
    return uri, manifest


def test_a_string_feature_fails_only_its_members_the_same_way_on_both_engines(
    engine_settings: WarpSpeedSettings,
) -> None:
    """Issue 27: Spark cast "abc" to null (scored with the imputed value), Arrow failed the whole batch."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import DoubleType, NestedField, StringType

    settings = engine_settings
    catalog = settings.catalog.load()
    schema = Schema(NestedField(1, "tenant_id", StringType(), required=False),
                    NestedField(2, "account_id", StringType(), required=False),
                    *(NestedField(3 + i, c, StringType() if c == "engagement_7d" else DoubleType(), required=False)
                      for i, c in enumerate(FEATURE_COLUMNS)))
    table = catalog.create_table_if_not_exists(TYPED, schema)
    rows = [("ty-t0", "a1", "5"), ("ty-t0", "a2", "abc"), ("ty-t1", "b1", "5"), ("ty-t1", "b2", "abc"),
            ("ty-t1", "b3", None)]
    table.overwrite(pa.table({"tenant_id": [r[0] for r in rows], "account_id": [r[1] for r in rows],
                              **{c: [r[2] for r in rows] if c == "engagement_7d" else [1.5 * i for i in range(5)]
                                 for c in FEATURE_COLUMNS}}).cast(table.schema().as_arrow()))
    settings.storage().write_text(
        join_uri(models_uri(settings.storage_prefix), "churn_risk", "v3.json"), json.dumps(INTENT_ONLY))

    spark_uri, spark_manifest = typed_manifest(settings, "spark")
    backend = LocalSparkBackend(settings)
    cluster = backend.ensure_cluster("scoring", "scoring")
    (outcome,) = backend.run_jobs(cluster, [SparkJob("typed-spark", SCORE_SCRIPT, ("--batch-manifest", spark_uri))])
    assert not outcome.succeeded  # partial: exit 3
    spark_summary = json.loads(settings.storage().read_text(spark_manifest.summary_uri))
    arrow_uri, _ = typed_manifest(settings, "arrow")
    code, arrow_summary = score_manifest(arrow_uri, settings.catalog.name, settings.catalog.pyiceberg_properties())
    assert code == 3

    def members(summary: dict[str, Any]) -> list[tuple[str, str, str | None, int]]:
        return [(m["model"], m["status"], m["error"], m["rows"]) for m in summary["members"]]

    not_numeric = f"reads columns of {settings.catalog.name}.{TYPED} that are not numeric: engagement_7d (string)"
    assert members(arrow_summary) == members(spark_summary) == [
        ("churn_risk", "failed", f"model churn_risk v1 {not_numeric}", 0),
        ("upsell_propensity", "failed", f"model upsell_propensity v1 {not_numeric}", 0),
        ("churn_risk", "scored", None, 3)]
    assert arrow_summary["status"] == spark_summary["status"] == "partial"
    scored = {}
    for engine in ("spark", "arrow"):
        written = catalog.load_table(f"arrowtest.typed_scores_{engine}").scan().to_arrow().to_pylist()
        scored[engine] = sorted((r["tenant_id"], r["model_version"], r["account_id"], r["score"]) for r in written)
    assert [r[:3] for r in scored["arrow"]] == [r[:3] for r in scored["spark"]] == [
        ("ty-t1", "v3", "b1"), ("ty-t1", "v3", "b2"), ("ty-t1", "v3", "b3")]
    assert [r[3] for r in scored["arrow"]] == pytest.approx([r[3] for r in scored["spark"]], rel=1e-12)
