from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import REPO_ROOT
from warpspeed.config.maintenance_policy import MaintenancePolicy, OrphanPolicy, TablePolicy
from warpspeed.exceptions import WarpSpeedConfigError

POLICY_FILE = REPO_ROOT / "dags" / "config" / "maintenance.yaml"


def test_shipped_policy_registers_the_tables_with_30_minute_defaults() -> None:
    policy = MaintenancePolicy.load(POLICY_FILE)
    ids = [t.identifier for t in policy.tables]
    assert ids[0] == "scores.account_scores"
    assert {"features.account_features", "warpspeed.batch_runs", "warpspeed.maintenance_runs"} <= set(ids)
    scores = policy["scores.account_scores"]
    assert scores.trigger.asset_driven and scores.trigger.min_new_commits == 48
    assert scores.snapshots.max_age_hours == 24 and scores.snapshots.retain_last == 10
    assert scores.compaction.small_file_bytes == int(128 * 1024 * 1024 * 0.75)
    assert scores.orphan_older_than_hours >= 72
    # per-table overrides merge over the defaults
    assert policy["features.account_features"].snapshots.retain_last == 5
    assert policy["features.account_features"].snapshots.max_age_hours == 24
    assert policy["warpspeed.maintenance_runs"].orphans.cadence_days == 30
    assert not policy["warpspeed.batch_runs"].trigger.asset_driven


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"tables": {"a.b": {"orphans": {"older_than_hours": 24}}}}, "orphans.older_than_hours=24"),
        ({"tables": {"a.b": {"orphans": {"older_than_hours": 80, "longest_write_hours": 96}}}},
         "longest_write_hours"),
        ({"tables": {"a.b": {"snapshots": {"retain_last": 0}}}}, "snapshots.retain_last"),
        ({"tables": {"a.b": {"snapshots": {"keep": 3}}}}, "unknown keys ['keep']"),
        ({"tables": {"a.b": {"compaction": {"small_file_ratio": 1.5}}}}, "compaction.small_file_ratio"),
        ({"tables": {"a.b": {"compaction": {"min_small_files": 1}}}}, "compaction.min_small_files"),
        ({"tables": {"a.b": {"trigger": {"asset_driven": "yes"}}}}, "trigger.asset_driven"),
        ({"tables": {"nodot": {}}}, "namespace.table"),
        ({"tables": {}}, "non-empty 'tables:'"),
        ({"defaults": {"bogus": {}}, "tables": {"a.b": {}}}, "defaults may only hold"),
    ],
)
def test_invalid_policies_name_the_field(doc: dict, needle: str) -> None:
    with pytest.raises(WarpSpeedConfigError, match=None) as err:
        MaintenancePolicy.from_dict(doc)
    assert needle in str(err.value)


def test_orphan_floor_is_never_below_three_days_nor_the_longest_write() -> None:
    policy = TablePolicy("a.b", orphans=OrphanPolicy(older_than_hours=100, longest_write_hours=90))
    assert policy.orphan_older_than_hours == 100
    assert TablePolicy("a.b").orphan_older_than_hours == 72


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(WarpSpeedConfigError, match="does not exist"):
        MaintenancePolicy.load(tmp_path / "nope.yaml")
