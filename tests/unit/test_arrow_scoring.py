"""Pure transforms of the single-node engine: Spark SQL's semantics on Arrow columns."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from spark_jobs.arrow_scoring import expression_scores, missing_feature_counts, rows_of
from spark_jobs.models import FeatureTerm, LogisticModel

MODEL = LogisticModel("m", "v1", 0.4, (
    FeatureTerm("a", -0.5, "log1p", impute=2.0),
    FeatureTerm("b", 0.03, "standardize", impute=50.0, mean=40.0, std=10.0),
))


def test_expression_scores_follow_spark_sql() -> None:
    rows = pa.table({"a": pa.array([1.0, None, float("nan"), -1.0, -3.0, 5.0]),
                     "b": pa.array([60.0, 20.0, 1.0, 1.0, 1.0, None])})
    scores, valid = expression_scores(rows, MODEL)
    assert valid.tolist() == [True, True, True, False, False, True]  # log1p(x <= -1) is null in Spark SQL
    assert scores[0] == pytest.approx(MODEL.score_one({"a": 1.0, "b": 60.0}), rel=1e-15)
    assert scores[1] == pytest.approx(MODEL.score_one({"a": None, "b": 20.0}), rel=1e-15)  # null is imputed
    assert math.isnan(scores[2])  # NaN is not null: coalesce keeps it, the score is NaN
    assert scores[5] == pytest.approx(MODEL.score_one({"a": 5.0, "b": None}), rel=1e-15)


def test_integer_columns_are_cast_and_overflow_saturates() -> None:
    rows = pa.table({"a": pa.array([3, None], pa.int64()), "b": pa.array([1e308, -1e308])})
    scores, valid = expression_scores(rows, MODEL)
    assert valid.all() and scores.tolist() == [1.0, 0.0]


def test_missing_counts_treat_null_not_nan_as_missing_and_rows_of_skips_null_tenants() -> None:
    features = pa.table({"t": pa.array(["x", "x", "y", None]), "a": pa.array([None, float("nan"), 1.0, None]),
                         "b": pa.array([1.0, 2.0, None, 3.0])})
    assert missing_feature_counts(features, ["a", "b"], "t") == {"x": (2, 1), "y": (1, 1)}
    assert missing_feature_counts(features, [], "t") == {"x": (2, 0), "y": (1, 0)}
    assert rows_of(features, "t", ["x", "z"]).num_rows == 2
