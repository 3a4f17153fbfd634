"""What can be checked of docker-compose.yaml without a Docker engine."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.paths import REPO_ROOT
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.jars import MAVEN_ARTIFACTS
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
    assert "127.0.0.1:8080:8080" in services["airflow-apiserver"]["ports"]


def test_published_ports_are_bound_to_loopback(compose: dict[str, Any]) -> None:
    published = {name: service.get("ports") or [] for name, service in compose["services"].items()}
    assert published["airflow-apiserver"] and published["sqs"]
    for name, ports in published.items():
        for port in ports:
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name} publishes {port!r} beyond loopback"


def test_build_and_bind_mounts_point_at_paths_that_exist(compose: dict[str, Any]) -> None:
    common = compose["x-airflow-common"]
    build = common["build"]
    assert (REPO_ROOT / build["context"] / build["dockerfile"]).is_file()
    dockerfile = (REPO_ROOT / build["dockerfile"]).read_text()
    assert "openjdk-17-jre-headless" in dockerfile and "JAVA_HOME" in dockerfile
    assert "iceberg-spark-runtime-3.5_2.12" in dockerfile and "sqlite-jdbc" in dockerfile
    for artifact in MAVEN_ARTIFACTS:  # the image fetches the jars `warpspeed setup` fetches, same versions
        _, name, version = artifact.split(":")
        args = re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.M)
        assert any(value == version and f"/{name}-${{{arg}}}.jar" in dockerfile for arg, value in args), artifact
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
    assert not (REPO_ROOT / "docker" / "simple_auth_passwords.json").exists(), "the admin password is generated"


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


SECRET_OPTIONS = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY")


def _load_init() -> Any:
    spec = importlib.util.spec_from_file_location("warpspeed_docker_init", REPO_ROOT / "docker" / "init.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_secrets_are_generated_by_init_into_a_volume_not_written_in_compose(
    compose: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _env(compose["x-airflow-common"])
    volumes = compose["x-airflow-common"]["volumes"]
    secrets_dir = next(v.split(":")[1] for v in volumes if v.startswith("warpspeed-secrets:"))
    for option in SECRET_OPTIONS:
        assert option not in env, f"{option} is written in compose: generate it"
        assert env[f"{option}_CMD"].startswith(f"cat {secrets_dir}/")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith(secrets_dir + "/")
    assert f"init.py --secrets {secrets_dir}" in compose["services"]["airflow-init"]["entrypoint"]

    init = _load_init()
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        init.write_secrets(folder)
    names = {Path(env[f"{o}_CMD"].split()[1]).name for o in SECRET_OPTIONS} | {
        Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).name}
    for name in names:
        assert (first / name).stat().st_mode & 0o777 == 0o600
        assert (first / name).read_text() != (second / name).read_text(), f"{name} is not random"
    assert len((first / "jwt_secret").read_text()) >= 64
    password = json.loads((first / "simple_auth_passwords.json").read_text())["admin"]
    assert password != "admin" and password in capsys.readouterr().out
    before = (first / "jwt_secret").read_text()
    init.write_secrets(first)  # a second `up` keeps them
    assert (first / "jwt_secret").read_text() == before
