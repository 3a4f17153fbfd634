"""Workload catalog and planning settings: loading, defaults and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import REPO_ROOT
from warpspeed.config.workloads import DEFAULT_PRIORITY_LANES, PlanningSettings, WorkloadCatalog
from warpspeed.exceptions import WarpSpeedConfigError

REPO_WORKLOADS = REPO_ROOT / "dags" / "config" / "workloads.yaml"


def test_repo_workloads_file_loads_with_planning_settings() -> None:
    catalog = WorkloadCatalog.load(REPO_WORKLOADS)
    planning = catalog.planning()
    assert set(planning) == {"scoring", "intent"}
    assert planning["scoring"].rows_cap == 200_000
    assert planning["intent"].priority_lanes == (("high",), ("normal", "low"))
    assert catalog["intent"].profile == "scoring"
    assert catalog.allowed_models["scoring"] == frozenset({"churn_risk", "upsell_propensity"})


def test_defaults() -> None:
    s = PlanningSettings()
    assert s.priority_lanes == DEFAULT_PRIORITY_LANES == (("high",), ("normal",), ("low",))
    assert (s.lane_of("high"), s.lane_of("normal"), s.lane_of("low")) == (0, 1, 2)
    assert s.promote_after_windows == 2


def test_priority_lanes_accept_yaml_shapes() -> None:
    s = PlanningSettings(priority_lanes=["high", ["normal", "low"]])  # type: ignore[arg-type]
    assert s.priority_lanes == (("high",), ("normal", "low"))
    assert s.lane_of("low") == 1 and s.lane_label(1) == "normal+low"
    assert hash(s) == hash(PlanningSettings(priority_lanes=(("high",), ("normal", "low"))))


@pytest.mark.parametrize(("lanes", "message"), [
    (["high", "normal"], "must list high, normal, low once each"),
    (["high", "normal", "low", "urgent"], "must list high, normal, low once each"),
    (["high", ["normal", "high"], "low"], "must list high, normal, low once each"),
    (["low", ["high", "normal"]], "in that order"),
    ("high", "must be a list"),
    (["high", [], ["normal", "low"]], "non-empty list"),
])
def test_priority_lanes_validation(lanes: object, message: str) -> None:
    with pytest.raises(WarpSpeedConfigError, match=message):
        PlanningSettings(priority_lanes=lanes)  # type: ignore[arg-type]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workloads.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_planning_key_names_the_workload(tmp_path: Path) -> None:
    path = write(tmp_path, "workloads:\n  scoring:\n    models: [m]\n    planning:\n      row_cap: 5\n")
    with pytest.raises(WarpSpeedConfigError, match=r"scoring.planning has unknown keys \['row_cap'\]"):
        WorkloadCatalog.load(path)


def test_bad_planning_value_names_the_file_workload_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "workloads:\n  scoring:\n    models: [m]\n    planning:\n      rows_cap: 0\n")
    with pytest.raises(WarpSpeedConfigError, match=r"workloads.yaml: workloads.scoring: planning.rows_cap"):
        WorkloadCatalog.load(path)


def test_planning_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "workloads:\n  scoring:\n    models: [m]\n    planning: [1, 2]\n")
    with pytest.raises(WarpSpeedConfigError, match="planning must be a mapping"):
        WorkloadCatalog.load(path)


def test_missing_planning_takes_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "workloads:\n  scoring:\n    models: [m]\n")
    assert WorkloadCatalog.load(path).planning()["scoring"] == PlanningSettings()


@pytest.mark.parametrize(("text", "message"), [
    ("workloads: {}\n", "non-empty 'workloads:' mapping"),
    ("workloads:\n  scoring: 3\n", "must be a mapping"),
    ("workloads:\n  scoring:\n    models: []\n", "lists no models"),
    ("workloads:\n  scoring:\n    models: [m]\n    colour: red\n", "unknown keys"),
    ("workloads: [\n", "not valid YAML"),
])
def test_catalog_validation(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(WarpSpeedConfigError, match=message):
        WorkloadCatalog.load(write(tmp_path, text))


def test_missing_file_and_unknown_workload(tmp_path: Path) -> None:
    with pytest.raises(WarpSpeedConfigError, match="does not exist"):
        WorkloadCatalog.load(tmp_path / "nope.yaml")
    with pytest.raises(WarpSpeedConfigError, match="unknown workload 'nope'; configured: intent, scoring"):
        WorkloadCatalog.load(REPO_WORKLOADS)["nope"]


# -- issue 13 item 10: mistakes that used to load silently ------------------------------------
@pytest.mark.parametrize(("text", "message"), [
    ("workloads:\n  scoring:\n    models: churn_risk\n",
     r"workloads.scoring: models must be a list .* got the string 'churn_risk'"),
    ("workloads:\n  scoring:\n    models: [1, null]\n", r"workloads.scoring: models\[0\] must be a model name"),
    ("workloads:\n  scoring:\n    models: [churn_risk, null]\n",
     r"workloads.scoring: models\[1\] must be a model name"),
    ("workloads:\n  a:\n    models: [churn_risk]\n  b:\n    models: [churn_risk]\n",
     r"model 'churn_risk' is listed under workloads 'a' and 'b'"),
    ("workloads:\n  scoring:\n    models: [m]\n    planning:\n      rows_cap: 5\n      rows_cap: 6\n",
     r"(?s)not valid YAML: .*duplicate key 'rows_cap'"),
    ("workloads:\n  scoring:\n    models: [m]\n  scoring:\n    models: [n]\n", r"duplicate key 'scoring'"),
])
def test_config_mistakes_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(WarpSpeedConfigError, match=message):
        WorkloadCatalog.load(write(tmp_path, text))


def test_unknown_profile_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cluster_profiles.yaml").write_text("profiles:\n  scoring: {}\n", encoding="utf-8")
    path = write(tmp_path,
                 "workloads:\n  scoring:\n    models: [m]\n  intent:\n    models: [n]\n    profile: scorin\n")
    message = r"workloads.yaml: workloads.intent.profile: unknown cluster profile 'scorin'; configured: scoring"
    with pytest.raises(WarpSpeedConfigError, match=message):
        WorkloadCatalog.load(path)
    path = write(tmp_path, "workloads:\n  scoring:\n    models: [m]\n  other:\n    models: [n]\n")
    with pytest.raises(WarpSpeedConfigError, match=r"workloads.other.profile: unknown cluster profile 'other'"):
        WorkloadCatalog.load(path)


def test_tables_and_flavoured_models(tmp_path: Path) -> None:
    path = write(tmp_path, """workloads:
  contacts:
    features_table: crm.contact_features
    entity_key: [region, contact_id]
    tenant_column: org
    scores_table: crm.contact_scores
    models:
      reply_rate:
        flavour: mlflow
        uri: s3://bucket/models/reply_rate/{version}
        output_index: 1
      fit:
        flavour: spark_ml
      churn: {}
""")
    workload = WorkloadCatalog.load(path)["contacts"]
    assert workload.tables.entity_key == ("region", "contact_id")
    assert workload.tables.tenant_column == "org"
    assert workload.models["reply_rate"].resolve("file:///m", "v2") == "s3://bucket/models/reply_rate/v2"
    assert workload.models["fit"].resolve("file:///m/", "v2") == "file:///m/fit/v2"
    assert workload.models["churn"].resolve("file:///m", "v1") == "file:///m/churn/v1.json"
    assert workload.manifest_models("file:///m")["reply_rate"]["flavour"] == "mlflow"


@pytest.mark.parametrize(("spec", "message"), [
    ("    features_table: features\n    models: [m]\n", r"workloads.w: features_table must be a table identifier"),
    ("    entity_key: []\n    models: [m]\n", r"workloads.w: entity_key must be a column name or a non-empty list"),
    ("    entity_key: [tenant_id]\n    models: [m]\n", r"workloads.w: entity_key .* other than tenant_column"),
    ("    entity_key: [\"a; DROP\"]\n    models: [m]\n", r"workloads.w: entity_key\[0\] must be a column name"),
    ("    entity_key: [score]\n    models: [m]\n", r"may not use the scores table's own columns"),
    ("    models:\n      m: {flavour: onnx}\n",
     r"workloads.w: models.m.flavour must be one of expression, mlflow, spark_ml"),
    ("    models:\n      m: {flavour: mlflow, uri: 's3://b/m'}\n", r"models.m.uri must contain \{version\}"),
    ("    models:\n      m: {uri: 's3://b/{nope}/{version}'}\n", r"models.m.uri uses unknown placeholders \['nope'\]"),
    ("    models:\n      m: {output_index: -1}\n", r"models.m.output_index must be a non-negative integer"),
    ("    models:\n      m: {colour: red}\n", r"models.m has unknown keys \['colour'\]"),
    ("    models:\n      Bad: {}\n", r"model name 'Bad' must match"),
])
def test_table_and_model_fields_are_validated(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(WarpSpeedConfigError, match=message):
        WorkloadCatalog.load(write(tmp_path, "workloads:\n  w:\n" + spec))
