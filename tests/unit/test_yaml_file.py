"""Issue 23: every bundle YAML file is read by one strict loader that refuses duplicate keys."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.paths import BUNDLE_CONFIG
from warpspeed.config.glue_job import GlueJobSettings
from warpspeed.config.lifecycle import load_rules
from warpspeed.config.maintenance_policy import MaintenancePolicy
from warpspeed.config.profile_catalog import ProfileCatalog
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.config.yaml_file import read_mapping
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.ledger.prices import DEFAULT_PRICE_TABLE, PriceTable

SIX_KINDS: list[tuple[str, Path, str, Callable[[Path], Any]]] = [
    ("workloads", BUNDLE_CONFIG / "workloads.yaml", "rows_cap", WorkloadCatalog.load),
    ("cluster profiles", BUNDLE_CONFIG / "cluster_profiles.yaml", "step_concurrency", ProfileCatalog.load),
    ("maintenance policy", BUNDLE_CONFIG / "maintenance.yaml", "retain_last", MaintenancePolicy.load),
    ("glue settings", BUNDLE_CONFIG / "preprocessing.yaml", "number_of_workers", GlueJobSettings.load),
    ("price table", DEFAULT_PRICE_TABLE, "spot_discount", PriceTable.load),
    ("lifecycle rules", BUNDLE_CONFIG / "s3_lifecycle.yaml", "expiration_days", load_rules),
]


def with_key_twice(shipped: Path, key: str, target: Path) -> int:
    """Copy ``shipped`` to ``target`` with the first ``key:`` line repeated below itself; return its line."""
    lines = shipped.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if re.match(rf"\s*(- )?{key}:", line))
    copy = re.sub(r"^(\s*)- ", r"\1  ", lines[first])  # a key opening a list item repeats inside the item
    target.write_text("\n".join([*lines[: first + 1], copy, *lines[first + 1:]]) + "\n", encoding="utf-8")
    return first + 2


@pytest.mark.parametrize(("kind", "shipped", "key", "load"), SIX_KINDS, ids=[k[0] for k in SIX_KINDS])
def test_a_duplicate_key_in_every_kind_of_bundle_file_is_refused(
    tmp_path: Path, kind: str, shipped: Path, key: str, load: Callable[[Path], Any]
) -> None:
    load(shipped)  # the shipped file itself loads
    path = tmp_path / shipped.name
    line = with_key_twice(shipped, key, path)
    with pytest.raises(WarpSpeedConfigError) as err:
        load(path)
    message = str(err.value)
    assert str(path) in message and f"duplicate key '{key}'" in message, message
    assert f"line {line}:" in message and "keep one" in message, message


def test_a_missing_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(WarpSpeedConfigError, match=rf"workloads file {re.escape(str(path))} does not exist: "
                                                    r"create it or pass the path of an existing file"):
        read_mapping(path, "workloads")


def test_a_syntax_error_names_the_file_the_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("workloads:\n  scoring:\n    models: [m\n  intent: {}\n", encoding="utf-8")
    with pytest.raises(WarpSpeedConfigError) as err:
        read_mapping(path, "workloads")
    message = str(err.value)
    assert message.startswith(f"workloads file {path} is not valid YAML: line 4, column ")
    assert "fix the syntax there" in message


def test_a_top_level_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("# profiles\n\n- scoring\n- intent\n", encoding="utf-8")
    with pytest.raises(WarpSpeedConfigError) as err:
        read_mapping(path, "cluster profiles")
    assert str(err.value) == (
        f"cluster profiles file {path}: line 3: the top level is a list; it must be a mapping of keys "
        "('name: value' lines starting in column 1)"
    )


def test_an_empty_file_is_an_empty_mapping_and_keys_keep_their_order(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    assert read_mapping(path, "preprocessing") == {}
    path.write_text("b: 1\na: {x: [1, 2]}\n", encoding="utf-8")
    doc = read_mapping(path, "preprocessing")
    assert list(doc) == ["b", "a"] and doc["a"] == {"x": [1, 2]}


def test_the_same_key_in_two_different_mappings_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("a: {x: 1}\nb: {x: 2}\nc:\n  - {x: 3}\n  - {x: 4}\n", encoding="utf-8")
    assert read_mapping(path, "maintenance policy")["c"] == [{"x": 3}, {"x": 4}]


def test_a_duplicate_key_reports_where_the_first_one_is(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("glue:\n  job_name: a\n  worker_type: G.1X\n  job_name: b\n", encoding="utf-8")
    with pytest.raises(WarpSpeedConfigError) as err:
        read_mapping(path, "preprocessing")
    assert str(err.value) == (
        f"preprocessing file {path} is not valid YAML: line 4: duplicate key 'job_name' (first at line 2); "
        "keep one of the two (YAML would silently use the last)"
    )


def test_a_merge_key_may_be_overridden_but_not_an_explicit_key_twice(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nover:\n  <<: *b\n  x: 3\n", encoding="utf-8")
    assert read_mapping(path, "cluster profiles")["over"] == {"x": 3, "y": 2}
    path.write_text("base: &b {x: 1}\nover:\n  <<: *b\n  x: 3\n  x: 4\n", encoding="utf-8")
    with pytest.raises(WarpSpeedConfigError, match=r"line 5: duplicate key 'x' \(first at line 4\)"):
        read_mapping(path, "cluster profiles")


def test_a_glue_section_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "preprocessing.yaml"
    path.write_text("glue: [warpspeed-build-features]\n", encoding="utf-8")
    with pytest.raises(WarpSpeedConfigError, match="glue must be a mapping of job settings"):
        GlueJobSettings.load(path)
