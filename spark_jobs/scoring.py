"""Pure scoring transforms: ``DataFrame -> DataFrame``, Spark SQL expressions only (no UDFs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.models import LogisticModel

SCORE_COLUMNS = ("tenant_id", "model", "model_version", "account_id", "score")


def model_expression(model: LogisticModel) -> Column:
    """Return the Spark expression computing ``model``'s score from feature columns."""
    z: Column = F.lit(model.intercept)
    for term in model.terms:
        x = F.coalesce(F.col(term.name).cast("double"), F.lit(term.impute))
        if term.transform == "log1p":
            x = F.log1p(x)
        elif term.transform == "standardize":
            x = (x - F.lit(term.mean)) / F.lit(term.std)
        z = z + F.lit(term.coefficient) * x
    return F.lit(1.0) / (F.lit(1.0) + F.exp(-z))


def score_accounts(
    features: DataFrame,
    members: DataFrame,
    models: Mapping[tuple[str, str], LogisticModel],
) -> DataFrame:
    """Score every account of each member tenant with the member's model version.

    :param features: Tier-2 features, one row per (tenant_id, account_id).
    :param members: (tenant_id, model, model_version) to score; small, so broadcast.
    :param models: (model, version) -> model; members whose model is absent are not scored.
    """
    if not models:
        return features.sparkSession.createDataFrame(
            [], "tenant_id string, model string, model_version string, account_id string, score double"
        )
    def is_member_of(key: tuple[str, str]) -> Column:
        return (F.col("model") == key[0]) & (F.col("model_version") == key[1])

    (first_key, first_model), *rest = models.items()
    score = F.when(is_member_of(first_key), model_expression(first_model))
    for key, model in rest:
        score = score.when(is_member_of(key), model_expression(model))
    joined = features.join(F.broadcast(members), on="tenant_id", how="inner")
    return joined.select(*SCORE_COLUMNS[:-1], score.alias("score")).where(F.col("score").isNotNull())


def missing_feature_counts(features: DataFrame, feature_columns: Sequence[str]) -> DataFrame:
    """Return per tenant: accounts, and accounts with at least one missing (imputed) feature."""
    any_missing = reduce(lambda a, b: a | b, [F.col(c).isNull() for c in feature_columns], F.lit(False))
    return features.groupBy("tenant_id").agg(
        F.count(F.lit(1)).alias("accounts"),
        F.sum(F.when(any_missing, 1).otherwise(0)).alias("accounts_missing_features"),
    )


def slice_condition(pairs: Sequence[tuple[str, str]]) -> str:
    """Return the SQL predicate selecting exactly these (tenant_id, model) slices.

    Tenant ids and model names are validated against strict patterns at intake, and quotes
    are escaped here as well, so the predicate is safe to embed.
    """
    if not pairs:
        return "false"

    def quote(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " OR ".join(
        f"(tenant_id = {quote(t)} AND model = {quote(m)})" for t, m in sorted(set(pairs))
    )
