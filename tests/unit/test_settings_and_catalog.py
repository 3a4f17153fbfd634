from __future__ import annotations

import json
from pathlib import Path

import pytest

from warpspeed.config.catalog import CatalogConfig, embedded_endpoint_file
from warpspeed.config.s3 import embedded_bucket
from warpspeed.config.settings import WarpSpeedSettings, load_settings
from warpspeed.exceptions import WarpSpeedConfigError


def test_defaults_put_everything_in_the_state_folders_bucket(tmp_path: Path) -> None:
    s = WarpSpeedSettings.from_mapping({"home": str(tmp_path)})
    # production keeps everything in S3, so does the embedded default: the state folder's bucket on
    # its embedded S3 server (issue 21), one bucket per state folder
    bucket = embedded_bucket(tmp_path)
    assert bucket.startswith("warpspeed-") and bucket != embedded_bucket(tmp_path / "other")
    assert s.storage_prefix == f"s3://{bucket}/storage"
    # the embedded default is the REST catalog server of the state folder (issue 12)
    assert (s.catalog.kind, s.catalog.uri, s.catalog.embedded_home) == ("rest", "", tmp_path)
    assert s.catalog.warehouse == f"s3://{bucket}/warehouse"
    assert (s.window_minutes, s.window_size_limit, s.compute_backend) == (30, 2000, "local")


def test_a_file_storage_prefix_keeps_documents_and_the_warehouse_in_folders(tmp_path: Path) -> None:
    s = WarpSpeedSettings.from_mapping({"home": str(tmp_path), "storage_prefix": (tmp_path / "storage").as_uri()})
    assert s.storage_prefix == (tmp_path / "storage").as_uri()
    assert s.catalog.warehouse == (tmp_path / "warehouse").as_uri()
    assert s.s3_request_log() is None


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
        ({"catalog_type": "rest", "catalog_uri": "thrift://metastore:9083"}, "a rest catalog URL is http(s)://"),
        ({"catalog_type": "sql", "catalog_uri": "mysql://db/iceberg"}, "catalog_uri='mysql://db/iceberg'"),
    ],
)
def test_bad_settings_say_what_to_change(tmp_path: Path, values: dict, message: str) -> None:
    with pytest.raises(WarpSpeedConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        WarpSpeedSettings.from_mapping({"home": str(tmp_path), **values})


@pytest.mark.parametrize("minutes", ["7", "45", "90", "1441"])
def test_a_window_length_no_cron_can_fire_on_is_refused_by_the_settings(tmp_path: Path, minutes: str) -> None:
    """Issue 23: settings took 7 and the scoring DAG then failed to parse (window_cron refused it)."""
    with pytest.raises(WarpSpeedConfigError) as err:
        WarpSpeedSettings.from_mapping({"home": str(tmp_path), "window_minutes": minutes})
    assert f"window_minutes={minutes}" in str(err.value)
    assert "1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440" in str(err.value)


@pytest.mark.parametrize("minutes", ["1", "3", "20", "60", "180", "1440"])
def test_every_length_the_settings_take_makes_a_schedule(tmp_path: Path, minutes: str) -> None:
    from warpspeed.window.rule import window_cron

    settings = WarpSpeedSettings.from_mapping({"home": str(tmp_path), "window_minutes": minutes})
    assert window_cron(settings.window_minutes)


@pytest.mark.parametrize("key", ["window_minutes", "window_size_limit", "local_spark_idle_seconds",
                                 "intake_visibility_timeout"])
def test_a_number_setting_that_is_not_a_whole_number_names_its_key_and_value(tmp_path: Path, key: str) -> None:
    with pytest.raises(WarpSpeedConfigError, match=rf"\[warpspeed\] {key}='2.5' must be a whole number"):
        WarpSpeedSettings.from_mapping({"home": str(tmp_path), key: "2.5"})


def test_the_parse_time_reader_and_the_settings_read_numbers_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    from warpspeed.config.settings import configured_int, whole_number

    monkeypatch.setenv("AIRFLOW__WARPSPEED__WINDOW_SIZE_LIMIT", "")
    assert configured_int("window_size_limit", 2000) == whole_number("window_size_limit", "", 2000) == 2000
    monkeypatch.setenv("AIRFLOW__WARPSPEED__WINDOW_SIZE_LIMIT", "15")
    assert configured_int("window_size_limit", 2000) == 15
    monkeypatch.setenv("AIRFLOW__WARPSPEED__WINDOW_SIZE_LIMIT", "lots")
    with pytest.raises(WarpSpeedConfigError, match=r"window_size_limit='lots' must be a whole number \(unset: 2000\)"):
        configured_int("window_size_limit", 2000)


def test_the_provider_options_document_the_settings_defaults(tmp_path: Path) -> None:
    from warpspeed.provider_info import CONFIG_OPTIONS

    defaults = WarpSpeedSettings.from_mapping({"home": str(tmp_path)})
    shared = [k for k in CONFIG_OPTIONS if k in WarpSpeedSettings.__dataclass_fields__ and CONFIG_OPTIONS[k]["default"]]
    assert shared, "no option with a default is a settings field"
    assert {k: CONFIG_OPTIONS[k]["default"] for k in shared} == {k: str(getattr(defaults, k)) for k in shared}


def test_every_setting_is_a_provider_option_so_load_settings_reads_it(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from warpspeed.provider_info import CONFIG_OPTIONS

    read: list[str] = []
    WarpSpeedSettings.from_mapping(_Recording({"home": str(tmp_path)}, read))
    assert set(read) - set(CONFIG_OPTIONS) == set()
    monkeypatch.setenv("AIRFLOW__WARPSPEED__HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__WARPSPEED__INTAKE_VISIBILITY_TIMEOUT", "60")
    assert load_settings().intake_visibility_timeout == 60


class _Recording(dict):
    """A settings mapping that records every key read from it."""

    def __init__(self, values: dict[str, str], read: list[str]) -> None:
        super().__init__(values)
        self.read = read

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.read.append(key)
        return super().get(key, default)


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


def test_embedded_rest_catalog_is_found_through_the_state_folder(tmp_path: Path) -> None:
    catalog = WarpSpeedSettings.from_mapping(
        {"home": str(tmp_path), "storage_prefix": (tmp_path / "storage").as_uri()}).catalog
    no_server = r"no embedded REST catalog runs .* set \[warpspeed\] catalog_conn_id"
    with pytest.raises(WarpSpeedConfigError, match=no_server):
        catalog.spark_conf()
    endpoint = embedded_endpoint_file(tmp_path)
    endpoint.parent.mkdir(parents=True)
    endpoint.write_text('{"uri": "http://127.0.0.1:8765"}')
    spark = catalog.spark_conf()
    assert (spark["spark.sql.catalog.warpspeed.type"], spark["spark.sql.catalog.warpspeed.uri"]) == (
        "rest", "http://127.0.0.1:8765")
    assert catalog.pyiceberg_properties() == {
        "type": "rest", "uri": "http://127.0.0.1:8765", "warehouse": (tmp_path / "warehouse").as_uri()}


def test_rest_connection_configures_spark_and_pyiceberg_alike() -> None:
    s3_tables = CatalogConfig.from_connection(
        "warpspeed_catalog", host="https://s3tables.us-east-1.amazonaws.com/iceberg", login=None, password=None,
        extra={"type": "rest", "warehouse": "arn:aws:s3tables:us-east-1:123456789012:bucket/scores",
               "rest.sigv4-enabled": "true", "rest.signing-name": "s3tables", "rest.signing-region": "us-east-1"},
    )
    spark = s3_tables.spark_conf()
    assert spark["spark.sql.catalog.warpspeed.type"] == "rest"
    assert spark["spark.sql.catalog.warpspeed.uri"] == "https://s3tables.us-east-1.amazonaws.com/iceberg"
    assert spark["spark.sql.catalog.warpspeed.rest.signing-name"] == "s3tables"
    assert s3_tables.pyiceberg_properties() == {
        "type": "rest", "uri": "https://s3tables.us-east-1.amazonaws.com/iceberg",
        "warehouse": "arn:aws:s3tables:us-east-1:123456789012:bucket/scores",
        "rest.sigv4-enabled": "true", "rest.signing-name": "s3tables", "rest.signing-region": "us-east-1"}

    polaris = CatalogConfig.from_connection("polaris", host="polaris.internal", port=8181, schema="api/catalog",
                                            login="client-id", password="secret", extra={"warehouse": "prod"})
    assert polaris.uri == "https://polaris.internal:8181/api/catalog"
    assert polaris.pyiceberg_properties()["credential"] == "client-id:secret"


def test_glue_and_sql_connections() -> None:
    glue = CatalogConfig.from_connection("c", host=None, login=None, password=None,
                                         extra={"type": "glue", "warehouse": "s3://b/wh", "region": "eu-west-1"})
    assert glue.pyiceberg_properties() == {"type": "glue", "warehouse": "s3://b/wh", "glue.region": "eu-west-1"}
    sql = CatalogConfig.from_connection(
        "c", host=None, login=None, password=None,
        extra={"type": "sql", "uri": "postgresql+psycopg2://ice:pw@db:5433/iceberg", "warehouse": "s3://b/wh"})
    spark = sql.spark_conf()
    assert spark["spark.sql.catalog.warpspeed.uri"] == "jdbc:postgresql://db:5433/iceberg"
    assert (spark["spark.sql.catalog.warpspeed.jdbc.user"], spark["spark.sql.catalog.warpspeed.jdbc.password"]) == (
        "ice", "pw")
    assert sql.pyiceberg_properties()["uri"] == "postgresql+psycopg2://ice:pw@db:5433/iceberg"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"type": "hive"}, "connection 'cat' .*type='hive'; use one of rest, glue, sql"),
        ({"type": "rest"}, "connection 'cat' .*a rest catalog needs its URL: set \\[warpspeed\\] catalog_uri"),
        ({"type": "glue", "warehouse": "file:///w"}, "connection 'cat' .*needs an s3:// warehouse"),
    ],
)
def test_bad_catalog_connections_name_the_connection_and_the_fix(extra: dict, message: str) -> None:
    with pytest.raises(WarpSpeedConfigError, match=message):
        CatalogConfig.from_connection("cat", host=None, login=None, password=None, extra=extra)


def test_load_settings_reads_the_catalog_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__WARPSPEED__HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__WARPSPEED__CATALOG_CONN_ID", "my_catalog")
    monkeypatch.setenv("AIRFLOW_CONN_MY_CATALOG", json.dumps(
        {"conn_type": "generic", "host": "https://nessie.example.com/iceberg", "extra": {"warehouse": "wh"}}))
    settings = load_settings()
    assert (settings.catalog.kind, settings.catalog.rest_uri(), settings.catalog.warehouse) == (
        "rest", "https://nessie.example.com/iceberg", "wh")
