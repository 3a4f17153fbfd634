"""Plan-time model checks: a missing version, or one whose inputs the feature table lacks, is unavailable."""

from __future__ import annotations

import json
from pathlib import Path

from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.models.probe import probe_models, unavailable_pairs
from warpspeed.storage.documents import LocalStorage

WORKLOADS = WorkloadCatalog.from_dict({"workloads": {
    "scoring": {"features_table": "crm.features", "models": {
        "churn": {"flavour": "expression"},
        "fit": {"flavour": "mlflow"},
        "pipe": {"flavour": "spark_ml", "inputs": ["a", "zzz"]},
        "remote": {"flavour": "mlflow", "uri": "models:/remote/{version_number}"},
    }},
}})


def expression(model: str, version: str, *features: str) -> str:
    return json.dumps({"schema": "warpspeed.model/v1", "kind": "logistic", "model": model, "version": version,
                       "intercept": 0.0, "features": [{"name": f, "coefficient": 1.0} for f in features]})


def test_probe_names_missing_versions_and_missing_inputs(tmp_path: Path) -> None:
    registry = tmp_path / "models"
    (registry / "churn").mkdir(parents=True)
    (registry / "churn" / "v1.json").write_text(expression("churn", "v1", "a", "b"))
    (registry / "churn" / "v2.json").write_text(expression("churn", "v2", "a", "salary"))
    (registry / "fit" / "v1").mkdir(parents=True)
    signature = json.dumps([{"name": "a", "type": "double"}, {"name": "b", "type": "double"}])
    (registry / "fit" / "v1" / "MLmodel").write_text(f"signature:\n  inputs: '{signature}'\n")
    (registry / "pipe" / "v1" / "metadata").mkdir(parents=True)
    (registry / "pipe" / "v1" / "metadata" / "part-00000").write_text("{}")
    requested = [("scoring", "churn", "v1"), ("scoring", "churn", "v2"), ("scoring", "churn", "v3"),
                 ("scoring", "fit", "v1"), ("scoring", "fit", "v2"), ("scoring", "pipe", "v1"),
                 ("scoring", "remote", "v4"), ("other", "churn", "v1")]
    found = probe_models(WORKLOADS, requested, LocalStorage(), registry.as_uri(), lambda table: ["a", "b", "c"])
    reasons = {(u.model, u.version): u.reason for u in found}
    assert set(reasons) == {("churn", "v2"), ("churn", "v3"), ("fit", "v2"), ("pipe", "v1")}
    assert reasons[("churn", "v2")] == "model churn v2 needs columns ['salary'] that crm.features lacks"
    assert reasons[("churn", "v3")].startswith("model churn v3 not found at file://")
    assert reasons[("pipe", "v1")] == "model pipe v1 needs columns ['zzz'] that crm.features lacks"
    assert unavailable_pairs(found) == frozenset(reasons)


def test_an_unreadable_feature_table_makes_its_models_unavailable(tmp_path: Path) -> None:
    (tmp_path / "churn").mkdir()
    (tmp_path / "churn" / "v1.json").write_text(expression("churn", "v1", "a"))

    def missing(table: str) -> list[str]:
        raise LookupError(f"no table {table}")

    (found,) = probe_models(WORKLOADS, [("scoring", "churn", "v1")], LocalStorage(), tmp_path.as_uri(), missing)
    assert "feature table crm.features cannot be read: LookupError" in found.reason


def test_refusals_spare_requests_a_valid_one_supersedes_and_those_the_probe_could_not_judge() -> None:
    from warpspeed.intake.schema import ScoringRequest
    from warpspeed.models.probe import Unavailable
    from warpspeed.planning.refusals import refusals

    def req(rid: str, tenant: str, version: str, model: str = "churn") -> ScoringRequest:
        return ScoringRequest(rid, tenant, model, version, "scoring", "2026-11-21T08:00:00+00:00", "normal", 10)

    found = [Unavailable("scoring", "churn", "v9", "model churn v9 not found at x"),
             Unavailable("scoring", "fit", "v1", "feature table crm.features cannot be read: boom", permanent=False)]
    requests = [req("a", "t1", "v9"), req("b", "t1", "v1"), req("c", "t2", "v9"), req("d", "t3", "v1", "fit"),
                req("e", "t4", "v1")]
    out = refusals(requests, found, {"e": "refused before"})
    assert [(r.request.request_id, r.reason) for r in out] == [
        ("c", "model churn v9 not found at x"), ("e", "refused before")]


# -- issue 27: one numeric-feature contract, and "not found" is the registry's answer ----------------------------

def test_the_numeric_contract_reads_spark_iceberg_and_arrow_type_names() -> None:
    import pyarrow as pa
    from pyiceberg import types as iceberg
    from pyspark.sql import types as spark

    from spark_jobs.feature_types import is_numeric

    numbers = [*(t.simpleString() for t in (spark.ByteType(), spark.ShortType(), spark.IntegerType(),
                                            spark.LongType(), spark.FloatType(), spark.DoubleType(),
                                            spark.DecimalType(10, 2))),
               *(str(t) for t in (iceberg.IntegerType(), iceberg.LongType(), iceberg.FloatType(),
                                  iceberg.DoubleType(), iceberg.DecimalType(10, 2))),
               *(str(t) for t in (pa.int8(), pa.int64(), pa.uint32(), pa.float16(), pa.float32(), pa.float64(),
                                  pa.decimal128(10, 2), pa.decimal256(40, 2)))]
    others = [*(t.simpleString() for t in (spark.StringType(), spark.BooleanType(), spark.TimestampType(),
                                           spark.ArrayType(spark.DoubleType()))),
              *(str(t) for t in (iceberg.StringType(), iceberg.BooleanType(), iceberg.TimestamptzType(),
                                 iceberg.ListType(1, iceberg.DoubleType()))),
              *(str(t) for t in (pa.string(), pa.large_string(), pa.bool_(), pa.list_(pa.float64())))]
    assert [t for t in numbers if not is_numeric(t)] == []
    assert [t for t in others if is_numeric(t)] == []


def test_a_version_reading_a_non_numeric_column_is_unavailable_for_good(tmp_path: Path) -> None:
    (tmp_path / "churn").mkdir()
    (tmp_path / "churn" / "v1.json").write_text(expression("churn", "v1", "a", "b"))
    (tmp_path / "churn" / "v2.json").write_text(expression("churn", "v2", "a"))
    types = {"tenant_id": "string", "a": "double", "b": "string"}
    found = probe_models(WORKLOADS, [("scoring", "churn", "v1"), ("scoring", "churn", "v2")], LocalStorage(),
                         tmp_path.as_uri(), lambda table: types)
    assert [(u.version, u.reason, u.permanent) for u in found] == [
        ("v1", "model churn v1 reads columns of crm.features that are not numeric: b (string)", True)]


def test_an_mlflow_input_its_signature_types_as_a_string_is_the_models_choice(tmp_path: Path) -> None:
    signature = json.dumps([{"name": "a", "type": "double"}, {"name": "b", "type": "string"}])
    (tmp_path / "fit" / "v1").mkdir(parents=True)
    (tmp_path / "fit" / "v1" / "MLmodel").write_text(f"signature:\n  inputs: '{signature}'\n")
    requested = [("scoring", "fit", "v1")]

    def probe(types: dict[str, str]) -> list[str]:
        return [u.reason for u in probe_models(WORKLOADS, requested, LocalStorage(), tmp_path.as_uri(),
                                               lambda table: types)]

    assert probe({"a": "double", "b": "string"}) == []
    assert probe({"a": "string", "b": "string"}) == [
        "model fit v1 reads columns of crm.features that are not numeric: a (string)"]


def test_a_missing_version_is_unavailable_for_good_whatever_the_tables_state(tmp_path: Path) -> None:
    """Issue 27: with the table unreadable the probe called a missing version undecided, and it won dedupes."""
    (tmp_path / "churn").mkdir()
    (tmp_path / "churn" / "v1.json").write_text(expression("churn", "v1", "a"))
    asked: list[str] = []

    def unreachable(table: str) -> list[str]:
        asked.append(table)
        raise ConnectionError("catalog down")

    found = probe_models(WORKLOADS, [("scoring", "churn", "v1"), ("scoring", "churn", "v404")], LocalStorage(),
                         tmp_path.as_uri(), unreachable)
    by_version = {u.version: u for u in found}
    assert by_version["v404"].permanent and by_version["v404"].reason.startswith("model churn v404 not found at")
    assert not by_version["v1"].permanent
    assert unavailable_pairs(found) == frozenset({("churn", "v404")})
    assert asked == ["crm.features"]  # once, and only for the version the registry holds
