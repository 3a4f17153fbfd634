"""What can be checked of docker-compose.yaml without a Docker engine."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.paths import REPO_ROOT
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.provider_info import CONFIG_OPTIONS

COMPOSE = REPO_ROOT / "docker-compose.yaml"
AIRFLOW_SERVICES = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "use the mapping form of environment"
    return {k: str(v) for k, v in env.items()}


def test_stack_has_every_airflow_3_component(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["sqs"]["image"].startswith("motoserver/moto:")
    assert "airflow db migrate" in services["airflow-init"]["entrypoint"]
    assert "8080:8080" in services["airflow-apiserver"]["ports"]


def test_build_and_bind_mounts_point_at_paths_that_exist(compose: dict[str, Any]) -> None:
    common = compose["x-airflow-common"]
    build = common["build"]
    assert (REPO_ROOT / build["context"] / build["dockerfile"]).is_file()
    dockerfile = (REPO_ROOT / build["dockerfile"]).read_text()
    assert "openjdk-17-jre-headless" in dockerfile and "JAVA_HOME" in dockerfile
    assert "iceberg-spark-runtime-3.5_2.12" in dockerfile and "sqlite-jdbc" in dockerfile
    makefile = (REPO_ROOT / "Makefile").read_text()
    for var in ("ICEBERG_VERSION", "SQLITE_JDBC_VERSION"):  # the image fetches the jars make setup fetches
        wanted = re.search(rf"^{var} := (\S+)", makefile, re.M)
        assert wanted and f"ARG {var}={wanted.group(1)}" in dockerfile
    named = set(compose.get("volumes") or {})
    for volume in common["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            assert (REPO_ROOT / source).exists(), f"bind mount source {source} does not exist"
            assert target.startswith("/opt/warpspeed/src/")
        else:
            assert source in named, f"named volume {source} is not declared"
    env = _env(common)
    for key in ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER"):
        folder = env[key].removeprefix("/opt/warpspeed/src/")
        assert (REPO_ROOT / folder).is_dir() and any(v.endswith(":" + env[key]) for v in common["volumes"])
    init = common["volumes"]
    assert any(v.endswith(":/opt/warpspeed/src/docker") for v in init)
    assert (REPO_ROOT / "docker" / "init.py").is_file()
    assert json.loads((REPO_ROOT / "docker" / "simple_auth_passwords.json").read_text())["admin"]


def test_environment_names_the_provider_settings(compose: dict[str, Any]) -> None:
    env = _env(compose["x-airflow-common"])
    prefix = "AIRFLOW__WARPSPEED__"
    keys = {k[len(prefix):].lower(): v for k, v in env.items() if k.startswith(prefix)}
    unknown = set(keys) - set(CONFIG_OPTIONS)
    assert not unknown, f"compose sets [warpspeed] keys the provider does not declare: {sorted(unknown)}"
    needs = ("home", "aws_conn_id", "queue_url", "dead_letter_queue_url", "compute_backend", "jars_dir")
    for needed in needs:
        assert keys.get(needed), f"compose must set {prefix}{needed.upper()}"
    # the values form valid settings, and the connection they name is defined
    settings = WarpSpeedSettings.from_mapping(keys)
    assert settings.compute_backend == "local" and settings.queue_url and settings.queue_url.startswith("http://sqs:")
    conn = json.loads(env[f"AIRFLOW_CONN_{settings.aws_conn_id.upper()}"])
    assert conn["conn_type"] == "aws" and conn["extra"]["endpoint_url"] == env["WARPSPEED_SQS_ENDPOINT"]
    # the docs name the same settings
    docs = (REPO_ROOT / "docs" / "ops.md").read_text()
    for key in keys:
        assert f"{prefix}{key.upper()}" in docs, f"docs/ops.md does not mention {prefix}{key.upper()}"


def test_every_airflow_service_shares_one_environment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    reference = _env(services["airflow-apiserver"])
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        assert _env(services[name]) == reference, f"{name} has a different environment"
    assert reference["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/")
    assert reference["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].split("@")[1].startswith("postgres/")


def test_compose_file_is_the_only_compose_file() -> None:
    assert not (Path(REPO_ROOT) / "docker-compose.yml").exists()
    assert not (Path(REPO_ROOT) / "compose.yaml").exists()
