"""The embedded catalog's token reaches Spark and pyiceberg, and never a process's command line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from warpspeed.compute.base import SparkJob
from warpspeed.compute.local import arrow
from warpspeed.compute.local.backend import LocalSparkBackend
from warpspeed.config.catalog import embedded_endpoint_file
from warpspeed.config.catalog_secrets import (
    pyiceberg_env,
    spark_secret_file,
    split_secrets,
    with_gateway_properties,
)
from warpspeed.config.settings import WarpSpeedSettings

TOKEN = "t0ken-of-the-state-folder-0123456789"


@pytest.fixture
def fake_home(tmp_path: Path) -> WarpSpeedSettings:
    """Settings on a state folder whose embedded catalog 'runs': endpoint and token files as the server writes them."""
    token_file = tmp_path / "catalog" / "rest-token"
    token_file.parent.mkdir()
    token_file.write_text(TOKEN + "\n")
    endpoint = {"uri": "http://127.0.0.1:8765", "warehouse": (tmp_path / "warehouse").as_uri(),
                "token_file": str(token_file)}
    embedded_endpoint_file(tmp_path).write_text(json.dumps(endpoint))
    return WarpSpeedSettings.from_mapping({"home": str(tmp_path), "local_spark_idle_seconds": "0",
                                           "storage_prefix": (tmp_path / "storage").as_uri()})  # no S3 server


def test_the_embedded_catalog_token_goes_to_spark_and_pyiceberg(fake_home: WarpSpeedSettings) -> None:
    spark = fake_home.catalog.spark_conf()
    assert spark["spark.sql.catalog.warpspeed.token"] == TOKEN
    assert spark["spark.sql.catalog.warpspeed.oauth2-server-uri"] == "http://127.0.0.1:8765/v1/oauth/tokens"
    props = fake_home.catalog.pyiceberg_properties()
    assert (props["token"], props["oauth2-server-uri"]) == (TOKEN, "http://127.0.0.1:8765/v1/oauth/tokens")


def test_secrets_are_told_apart_by_their_names() -> None:
    public, secret = split_secrets({"uri": "u", "token": "t", "credential": "c", "s3.secret-access-key": "k",
                                    "spark.sql.catalog.x.jdbc.password": "p", "oauth2-server-uri": "o"})
    assert public == {"uri": "u", "oauth2-server-uri": "o"}
    assert set(secret) == {"token", "credential", "s3.secret-access-key", "spark.sql.catalog.x.jdbc.password"}


def test_pyiceberg_gets_secrets_from_the_environment() -> None:
    public, env = pyiceberg_env("warpspeed", {"uri": "u", "token": "t", "s3.secret-access-key": "k",
                                              "odd_key.token": "x"})
    assert env == {"PYICEBERG_CATALOG__WARPSPEED__TOKEN": "t",
                   "PYICEBERG_CATALOG__WARPSPEED__S3__SECRET_ACCESS_KEY": "k"}
    assert public == {"uri": "u", "odd_key.token": "x"}  # not expressible as a variable name


def test_pyiceberg_reads_those_variables_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyiceberg.utils.config import Config

    _, env = pyiceberg_env("warpspeed", {"token": "t", "s3.secret-access-key": "k"})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Config().get_catalog_config("warpspeed") == {"token": "t", "s3.secret-access-key": "k"}


def test_spark_gets_secrets_from_a_private_properties_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARK_CONF_DIR", raising=False)
    conf = {"spark.sql.catalog.w.uri": "http://x", "spark.sql.catalog.w.token": TOKEN}
    public, path = spark_secret_file(conf, tmp_path / "run")
    assert public == {"spark.sql.catalog.w.uri": "http://x"} and path is not None
    assert path.read_text() == f"spark.sql.catalog.w.token {TOKEN}\n"
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert spark_secret_file(conf, tmp_path / "run") == (public, path)  # one file per set of secrets
    assert spark_secret_file({"a": "b"}, tmp_path / "run") == ({"a": "b"}, None)


def test_a_users_spark_defaults_come_first_in_the_properties_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "spark-defaults.conf").write_text("spark.executor.cores 3\n")
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path / "conf"))
    _, path = spark_secret_file({"spark.sql.catalog.w.token": TOKEN}, tmp_path / "run")
    assert path is not None and path.read_text() == f"spark.executor.cores 3\nspark.sql.catalog.w.token {TOKEN}\n"


def test_the_gateway_reads_the_properties_file_before_the_users_submit_args(tmp_path: Path) -> None:
    path = tmp_path / "run" / "spark-secrets-x.conf"
    assert with_gateway_properties(path, {}) == {"PYSPARK_SUBMIT_ARGS": f"--properties-file {path} pyspark-shell"}
    assert with_gateway_properties(path, {"PYSPARK_SUBMIT_ARGS": "--driver-memory 1g pyspark-shell"}) == {
        "PYSPARK_SUBMIT_ARGS": f"--properties-file {path} --driver-memory 1g pyspark-shell"}
    assert with_gateway_properties(None, {}) == {}
    earlier = with_gateway_properties(tmp_path / "old.conf", {})
    assert with_gateway_properties(path, earlier) == {"PYSPARK_SUBMIT_ARGS": f"--properties-file {path} pyspark-shell"}


def test_spark_submit_command_line_carries_no_token(fake_home: WarpSpeedSettings) -> None:
    backend = LocalSparkBackend(fake_home, warm=False)
    job = SparkJob(name="batch-1", script="score_batch.py", args=("--batch-manifest", "m.json"))
    command = backend.command(job, fake_home.home / "spark_jobs.zip")
    assert TOKEN not in " ".join(command)
    assert "spark.sql.catalog.warpspeed.uri=http://127.0.0.1:8765" in command
    secrets_file = Path(command[command.index("--properties-file") + 1])
    assert TOKEN in secrets_file.read_text() and secrets_file.parent == fake_home.home / "run"


def test_arrow_subprocess_gets_the_token_through_its_environment(
    fake_home: WarpSpeedSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen["command"], seen["env"] = command, kwargs["env"]
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(arrow.subprocess, "run", run)
    job = SparkJob(name="batch-1", script="score_arrow.py", args=("--batch-manifest", "m.json"), engine="arrow")
    assert arrow.run_subprocess(fake_home, job, tmp_path / "log")[0] == 0
    assert TOKEN not in " ".join(seen["command"]) and "uri=http://127.0.0.1:8765" in seen["command"]
    assert seen["env"]["PYICEBERG_CATALOG__WARPSPEED__TOKEN"] == TOKEN
