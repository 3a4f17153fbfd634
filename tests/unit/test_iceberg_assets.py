"""Issue 25: one asset per Iceberg table (the ``iceberg://`` scheme) and the catalog's connection type."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from warpspeed.assets.iceberg import (
    LEGACY_NAMES,
    create_asset,
    dataset_of,
    sanitize_uri,
    scored_tables,
    table_asset,
    table_of,
    table_uri,
)
from warpspeed.config.catalog import CatalogConfig
from warpspeed.hooks.catalog import IcebergCatalogHook
from warpspeed.lineage.datasets import DatasetName
from warpspeed.provider_info import get_provider_info


def test_a_table_has_one_uri_and_one_name() -> None:
    assert table_uri("warpspeed", "crm.member_scores") == "iceberg://warpspeed/crm/member_scores"
    assert table_uri("Lake", "a.b.t") == "iceberg://lake/a/b/t"
    assert table_of("iceberg://lake/a/b/t") == ("lake", "a.b.t")
    with pytest.raises(ValueError):
        table_uri("warpspeed", "no_namespace")
    member = table_asset("warpspeed", "crm.member_scores")
    assert (member.name, member.uri) == ("iceberg://warpspeed/crm/member_scores",) * 2
    scores = table_asset("warpspeed", "scores.account_scores")
    assert (scores.name, scores.uri) == ("warpspeed_scores", "iceberg://warpspeed/scores/account_scores")
    assert set(LEGACY_NAMES.values()) == {"warpspeed_scores", "warpspeed_features"}
    made = create_asset(catalog="warpspeed", namespace="crm", table="member_scores", extra={"k": 1})
    assert (made.uri, made.extra) == (member.uri, {"k": 1})
    assert scored_tables().name == "warpspeed_scored_tables"


def test_the_scheme_handler_checks_and_normalises() -> None:
    clean = sanitize_uri(urlsplit("iceberg://WarpSpeed/crm//member_scores/?x=1#f"))
    assert clean.geturl() == "iceberg://warpspeed/crm/member_scores"
    for bad in ("iceberg:///crm/t", "iceberg://warpspeed/only_table"):
        with pytest.raises(ValueError, match="iceberg://"):
            sanitize_uri(urlsplit(bad))


def test_airflow_uses_the_registered_handler_factory_and_converter(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Asset
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    info = get_provider_info()
    (assets,) = info["asset-uris"]
    runtime = ProvidersManagerTaskRuntime()
    assert runtime.asset_uri_handlers["iceberg"] is sanitize_uri
    assert runtime.asset_factories["iceberg"] is create_asset
    assert Asset("iceberg://WarpSpeed/crm/member_scores/").uri == "iceberg://warpspeed/crm/member_scores"
    with pytest.raises(ValueError):
        Asset("iceberg://warpspeed/only_table")
    assert assets["to_openlineage_converter"].endswith("convert_asset_to_openlineage")

    # the converter names a table of the configured catalog as the operators' lineage does
    monkeypatch.setenv("AIRFLOW__WARPSPEED__HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__WARPSPEED__CATALOG_URI", "https://catalog.example.com/iceberg")
    assert dataset_of("iceberg://warpspeed/crm/member_scores") == DatasetName(
        "https://catalog.example.com/iceberg", "crm.member_scores")
    assert dataset_of("iceberg://other/crm/member_scores") == DatasetName("iceberg://other", "crm.member_scores")


def test_the_catalog_connection_type_has_form_fields_and_builds_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    (connection,) = get_provider_info()["connection-types"]
    assert connection["connection-type"] == IcebergCatalogHook.conn_type == "warpspeed_catalog"
    assert connection["hook-class-name"] == "warpspeed.hooks.catalog.IcebergCatalogHook"
    assert set(connection["conn-fields"]) == {"type", "warehouse", "region", "name", "token"}
    assert connection["conn-fields"]["token"]["schema"]["format"] == "password"
    assert connection["conn-fields"]["type"]["schema"]["enum"] == ["rest", "glue", "sql"]
    assert connection["ui-field-behaviour"]["relabeling"]["host"] == "Catalog URI"

    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["warpspeed_catalog"]
    assert hook is not None and hook.hook_class_name == "warpspeed.hooks.catalog.IcebergCatalogHook"
    manager = ProvidersManager()
    assert manager.field_behaviours["warpspeed_catalog"]["hidden_fields"] == ["schema", "port"]
    assert manager.connection_form_widgets["extra__warpspeed_catalog__token"].is_sensitive

    # the form's fields are the extra keys the catalog reads; an `iceberg` connection works alike
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({
        "conn_type": "warpspeed_catalog", "host": "https://glue.eu-west-1.amazonaws.com/iceberg",
        "extra": {"type": "rest", "warehouse": "123456789012", "region": "eu-west-1", "name": "lake",
                  "rest.sigv4-enabled": "true"}}))
    catalog = IcebergCatalogHook("lake").get_catalog_config()
    assert (catalog.kind, catalog.uri, catalog.name, catalog.warehouse) == (
        "rest", "https://glue.eu-west-1.amazonaws.com/iceberg", "lake", "123456789012")
    assert catalog.properties == {"rest.sigv4-enabled": "true"}
    monkeypatch.setenv("AIRFLOW_CONN_ICE", json.dumps({
        "conn_type": "iceberg", "host": "sqlite:////tmp/x.db", "extra": {"type": "sql", "warehouse": "file:///tmp/w"}}))
    assert IcebergCatalogHook("ice").get_catalog_config().kind == "sql"
    assert isinstance(catalog, CatalogConfig)
