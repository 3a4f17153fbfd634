from __future__ import annotations

from pathlib import Path

import pytest

from warpspeed.catalog import CatalogConfig
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.settings import WarpSpeedSettings


def test_defaults_put_everything_under_the_state_folder(tmp_path: Path) -> None:
    s = WarpSpeedSettings.from_mapping({"home": str(tmp_path)})
    assert s.storage_prefix == (tmp_path / "storage").as_uri()
    assert s.catalog.sqlite_path == tmp_path / "catalog.db"
    assert s.catalog.warehouse == (tmp_path / "warehouse").as_uri()
    assert (s.window_minutes, s.window_size_limit, s.compute_backend) == (30, 2000, "local")


def test_warpspeed_home_moves_the_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARPSPEED_HOME", str(tmp_path / "elsewhere"))
    assert WarpSpeedSettings.from_mapping({}).home == tmp_path / "elsewhere"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"compute_backend": "k8s"}, "compute_backend='k8s': use one of local, emr"),
        ({"window_minutes": "0"}, "window_minutes=0 must be between 1 and 1440"),
        ({"window_size_limit": "lots"}, "window settings must be integers"),
        ({"catalog_type": "glue"}, "catalog warehouse is empty"),
        ({"catalog_type": "glue", "warehouse": "file:///tmp/w"}, "a glue catalog needs an s3:// warehouse"),
        ({"catalog_type": "hive"}, "catalog kind 'hive' is not supported"),
    ],
)
def test_bad_settings_say_what_to_change(tmp_path: Path, values: dict, message: str) -> None:
    with pytest.raises(WarpSpeedConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        WarpSpeedSettings.from_mapping({"home": str(tmp_path), **values})


def test_missing_queues_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(WarpSpeedConfigError, match="set \\[warpspeed\\] queue_url"):
        WarpSpeedSettings.from_mapping({"home": str(tmp_path)}).require_queues()


def test_one_config_drives_spark_and_pyiceberg(tmp_path: Path) -> None:
    sql = CatalogConfig.embedded(tmp_path)
    spark = sql.spark_conf()
    assert spark["spark.sql.catalog.warpspeed.type"] == "jdbc"
    assert spark["spark.sql.catalog.warpspeed.uri"] == f"jdbc:sqlite:{tmp_path / 'catalog.db'}"
    assert sql.pyiceberg_properties()["uri"] == f"sqlite:///{tmp_path / 'catalog.db'}"
    assert spark["spark.sql.catalog.warpspeed.warehouse"] == sql.pyiceberg_properties()["warehouse"]

    glue = CatalogConfig(kind="glue", warehouse="s3://b/wh", region="eu-west-1")
    assert glue.spark_conf()["spark.sql.catalog.warpspeed.type"] == "glue"
    assert glue.spark_conf()["spark.sql.catalog.warpspeed.io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert glue.pyiceberg_properties() == {"type": "glue", "warehouse": "s3://b/wh", "glue.region": "eu-west-1"}
    assert glue.spark_table("scores.account_scores") == "warpspeed.scores.account_scores"
