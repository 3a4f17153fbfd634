"""Workload catalog and planning settings: loading, defaults and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import REPO_ROOT
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.workloads import DEFAULT_PRIORITY_LANES, PlanningSettings, WorkloadCatalog

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
