"""Pure scoring transforms on a local SparkSession, checked against hand-computed scores."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import Observation, SparkSession
from pyspark.testing import assertDataFrameEqual

from spark_jobs.models import LogisticModel, parse_model
from spark_jobs.scoring import (
    decode_tenant_counts,
    members_frame,
    missing_feature_counts,
    observe_tenant_counts,
    score_accounts,
    score_members,
    slice_condition,
    tenant_keys,
)

FEATURES_DDL = "tenant_id string, account_id string, engagement_7d double, intent_score double"


def model(name: str, version: str, intercept: float, coef: float) -> LogisticModel:
    return parse_model(json.dumps({
        "schema": "warpspeed.model/v1", "kind": "logistic", "model": name, "version": version,
        "intercept": intercept,
        "features": [
            {"name": "engagement_7d", "transform": "log1p", "coefficient": coef, "impute": 2.0},
            {"name": "intent_score", "transform": "standardize", "mean": 50, "std": 25, "coefficient": 0.5,
             "impute": 50.0},
        ],
    }))


@pytest.fixture(scope="module")
def features(spark: SparkSession):  # type: ignore[no-untyped-def]
    rows = [
        ("t1", "a1", 3.0, 80.0),
        ("t1", "a2", None, 20.0),
        ("t2", "b1", 0.0, None),
        ("t3", "c1", 9.0, 99.0),  # not in the batch: must never be scored
    ]
    return spark.createDataFrame(rows, FEATURES_DDL)


def test_scores_match_the_formula_per_member_model(spark: SparkSession, features) -> None:  # type: ignore[no-untyped-def]
    churn_v1, churn_v2 = model("churn", "v1", -1.0, 0.7), model("churn", "v2", 0.3, -0.2)
    upsell = model("upsell", "v1", 0.1, 1.1)
    members = spark.createDataFrame(
        [("t1", "churn", "v1"), ("t1", "upsell", "v1"), ("t2", "churn", "v2")],
        "tenant_id string, model string, model_version string",
    )
    models = {("churn", "v1"): churn_v1, ("churn", "v2"): churn_v2, ("upsell", "v1"): upsell}
    actual = score_accounts(features, members, models)

    rows = {r["account_id"]: r.asDict() for r in features.collect()}
    expected_rows = [
        (tenant, m.model, m.version, account, m.score_one(rows[account]))
        for tenant, m, account in [
            ("t1", churn_v1, "a1"), ("t1", churn_v1, "a2"), ("t1", upsell, "a1"), ("t1", upsell, "a2"),
            ("t2", churn_v2, "b1"),
        ]
    ]
    expected = spark.createDataFrame(
        expected_rows, "tenant_id string, model string, model_version string, account_id string, score double"
    )
    assertDataFrameEqual(actual, expected, rtol=1e-9)


@pytest.mark.parametrize("versions", [("v1",), ("v1", "v2")], ids=["one version", "two versions"])
def test_score_members_gives_the_rows_of_the_join_whatever_the_number_of_versions(
    spark: SparkSession, features, versions: tuple[str, ...]  # type: ignore[no-untyped-def]
) -> None:
    from spark_jobs.flavours import LoadedModel

    models = {("churn", v): model("churn", v, -1.0 + i, 0.7 - i) for i, v in enumerate(versions)}
    loaded = {k: LoadedModel("churn", k[1], "expression", "file:///m", ("engagement_7d", "intent_score"), expression=m)
              for k, m in models.items()}
    members = [("t1", "churn", versions[0]), ("t2", "churn", versions[-1])]  # t3 is in features, not a member
    joined = score_accounts(features.where("tenant_id in ('t1', 't2')"),
                            spark.createDataFrame(members, "tenant_id string, model string, model_version string"),
                            models)
    assertDataFrameEqual(score_members(features, members, loaded), joined, rtol=1e-12)
    assert {r.tenant_id for r in joined.collect()} == {"t1", "t2"}


def test_members_without_a_loaded_model_are_not_scored(spark: SparkSession, features) -> None:  # type: ignore[no-untyped-def]
    members = spark.createDataFrame([("t1", "churn", "v9"), ("t2", "churn", "v1")],
                                    "tenant_id string, model string, model_version string")
    scored = score_accounts(features, members, {("churn", "v1"): model("churn", "v1", 0, 1)})
    assert {(r.tenant_id, r.model_version) for r in scored.collect()} == {("t2", "v1")}
    assert score_accounts(features, members, {}).count() == 0


def test_missing_feature_counts_per_tenant(spark: SparkSession, features) -> None:  # type: ignore[no-untyped-def]
    expected = spark.createDataFrame(
        [("t1", 2, 1), ("t2", 1, 1), ("t3", 1, 0)], "tenant_id string, accounts long, accounts_missing_features long"
    )
    assertDataFrameEqual(missing_feature_counts(features, ["engagement_7d", "intent_score"]), expected)


def test_slice_condition_selects_exactly_the_pairs(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [("t1", "m1"), ("t1", "m2"), ("t2", "m1"), ("o'brien", "m1")], "tenant_id string, model string"
    )
    picked = df.where(slice_condition([("t1", "m1"), ("o'brien", "m1"), ("t1", "m1")]))
    assert sorted(tuple(r) for r in picked.collect()) == [("o'brien", "m1"), ("t1", "m1")]
    assert df.where(slice_condition([])).count() == 0


def test_counts_observed_while_scoring_equal_the_counting_pass(spark: SparkSession, features) -> None:  # type: ignore[no-untyped-def]
    observation = Observation("counts")
    observed = observe_tenant_counts(features, observation, "tenant_id", ["engagement_7d", "intent_score"], 3)
    assert observed.columns == features.columns
    observed.write.format("noop").mode("overwrite").save()
    counts = decode_tenant_counts(observation.get, tenant_keys(spark, ["t1", "t2", "t3", "t4"]))
    assert counts == {"t1": (2, 1), "t2": (1, 1), "t3": (1, 0)}  # t4 has no rows
    expected = {r.tenant_id: (r.accounts, r.accounts_missing_features)
                for r in missing_feature_counts(features, ["engagement_7d", "intent_score"]).collect()}
    assert counts == expected


def test_members_frame_holds_exactly_the_members(spark: SparkSession) -> None:
    members = [("t1", "churn", "v1"), ("t2", "it's", "v2")]
    expected = spark.createDataFrame(members, "org string, model string, model_version string")
    assertDataFrameEqual(members_frame(spark, members, "org"), expected)
    assert members_frame(spark, [], "org").columns == ["org", "model", "model_version"]
    assert members_frame(spark, [], "org").count() == 0


def test_a_non_numeric_feature_fails_only_its_models_members_the_same_way_on_both_engines(
    spark: SparkSession, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Issue 27: ``engagement_7d`` as STRING holding "5" and "abc".

    Spark cast "abc" to null and scored it with the imputed value; Arrow's cast failed the whole
    batch. Both engines now refuse the version reading it when it loads, with one reason; the
    version that does not read it scores its members, the same rows on both.
    """
    import pyarrow as pa

    from spark_jobs import arrow_scoring, score_arrow, score_batch

    rows = [("t1", "a1", "5", 80.0), ("t1", "a2", "abc", 20.0), ("t2", "b1", "1", None)]
    ddl = "tenant_id string, account_id string, engagement_7d string, intent_score double"
    reads_both = model("churn", "v1", -1.0, 0.7)
    reads_intent = parse_model(json.dumps({
        "schema": "warpspeed.model/v1", "kind": "logistic", "model": "upsell", "version": "v1", "intercept": 0.2,
        "features": [{"name": "intent_score", "transform": "standardize", "mean": 50, "std": 25,
                      "coefficient": 0.5, "impute": 50.0}]}))
    for m in (reads_both, reads_intent):
        (tmp_path / m.model).mkdir()
        (tmp_path / m.model / f"{m.version}.json").write_text(json.dumps({
            "schema": "warpspeed.model/v1", "kind": "logistic", "model": m.model, "version": m.version,
            "intercept": m.intercept, "features": [t.__dict__ for t in m.terms]}))
    manifest = {"models": {}, "models_uri": tmp_path.as_uri()}
    keys = {("churn", "v1"), ("upsell", "v1")}
    members = [("t1", "churn", "v1"), ("t1", "upsell", "v1"), ("t2", "upsell", "v1")]

    features = spark.createDataFrame(rows, ddl)
    spark_models, spark_errors = score_batch.load_models(
        spark, manifest, keys, {f.name: f.dataType.simpleString() for f in features.schema.fields}, "crm.features")
    table = pa.Table.from_pylist([dict(zip(("tenant_id", "account_id", "engagement_7d", "intent_score"), r,
                                           strict=True)) for r in rows])
    arrow_models, _, arrow_errors = score_arrow.load_models(
        manifest, keys, {f.name: str(f.type) for f in table.schema}, "crm.features")

    reason = "model churn v1 reads columns of crm.features that are not numeric: engagement_7d (string)"
    assert spark_errors == arrow_errors == {("churn", "v1"): reason}
    ok = [m for m in members if (m[1], m[2]) in spark_models]
    by_account = {r[1]: {"intent_score": r[3]} for r in rows}
    expected = spark.createDataFrame(
        [(t, "upsell", "v1", a, reads_intent.score_one(by_account[a])) for t, a in (("t1", "a1"), ("t1", "a2"),
                                                                                   ("t2", "b1"))],
        "tenant_id string, model string, model_version string, account_id string, score double")
    assertDataFrameEqual(score_members(features, ok, spark_models), expected, rtol=1e-12)
    arrow_scored = arrow_scoring.score_members(table, ok, arrow_models, "tenant_id", ["account_id"])
    assert arrow_scored is not None
    assertDataFrameEqual(spark.createDataFrame(arrow_scored.to_pylist(), expected.schema), expected, rtol=1e-12)
