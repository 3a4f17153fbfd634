"""Issue 22, bad input: a profile's spark-defaults entry Spark would ignore or fail on is refused by name.

EMR writes ``spark_defaults`` into spark-defaults.conf without reading it; Spark then ignores a key
that is not ``spark.*`` and fails every application on a size it cannot parse. The ensure-clusters
task loads the profiles before it creates anything, so the window fails at once with the key named
instead of a cluster whose every step fails.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.paths import REPO_ROOT
from warpspeed.config.profile_catalog import ProfileCatalog
from warpspeed.config.spark_properties import spark_defaults_problem
from warpspeed.exceptions import WarpSpeedConfigError

PROFILES = REPO_ROOT / "dags" / "config" / "cluster_profiles.yaml"


def with_defaults(**entries: str) -> dict[str, Any]:
    doc = copy.deepcopy(yaml.safe_load(PROFILES.read_text()))
    doc["profiles"]["scoring"]["spark_defaults"] = dict(doc["profiles"]["scoring"].get("spark_defaults") or {},
                                                        **entries)
    return doc


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("executor.memory", "4g", r"'executor\.memory' is not a Spark property"),
        ("spark.executor.memory", "lots", r"='lots' is not a size Spark reads"),
        ("spark.executor.memoryOverhead", "1 gig", r"is not a size"),
        ("spark.executor.cores", "two", r"is not a whole number"),
        ("spark.dynamicAllocation.maxExecutors", "-1", r"is not a whole number"),
        ("spark.dynamicAllocation.enabled", "yes", r"is not true or false"),
        ("spark.master", "local[*]", r"is reserved"),
        ("spark.sql.shuffle.partitions", " ", r"is empty"),
    ],
)
def test_a_bad_spark_defaults_entry_names_the_profile_key(key: str, value: str, why: str) -> None:
    field = re.escape(f"profiles.scoring.spark_defaults.{key} ")
    with pytest.raises(WarpSpeedConfigError, match=rf"{field}.*{why}"):
        ProfileCatalog.from_dict(with_defaults(**{key: value}), "cluster_profiles.yaml")


def test_the_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cluster_profiles.yaml"
    path.write_text(yaml.safe_dump(with_defaults(**{"spark.executor.memory": "lots"})))
    with pytest.raises(WarpSpeedConfigError, match=rf"^{path}: profiles\.scoring\.spark_defaults\.spark\.executor"):
        ProfileCatalog.load(path)


@pytest.mark.parametrize(("key", "value"), [("spark.executor.memory", "8g"), ("spark.executor.memory", "4096m"),
                                            ("spark.driver.maxResultSize", "0"), ("spark.executor.cores", "4"),
                                            ("spark.sql.adaptive.enabled", "TRUE"),
                                            ("spark.pyspark.python", "./environment/bin/python"),
                                            ("spark.hadoop.fs.s3a.connection.maximum", "200")])
def test_good_entries_pass(key: str, value: str) -> None:
    assert spark_defaults_problem(key, value) is None
    ProfileCatalog.from_dict(with_defaults(**{key: value}))


def test_the_shipped_profiles_pass() -> None:
    ProfileCatalog.load(PROFILES)
