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
