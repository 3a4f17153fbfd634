"""The `warpspeed` command reads `[warpspeed]` and a plain AWS connection as Airflow does, without importing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT
from warpspeed.config import settings as settings_module
from warpspeed.embedded import cli_settings

STACK_ENV = {
    "AIRFLOW__WARPSPEED__HOME": "{tmp}/home",
    "AIRFLOW__WARPSPEED__AWS_CONN_ID": "warpspeed_aws",
    "AIRFLOW__WARPSPEED__QUEUE_URL": "http://127.0.0.1:9324/000000000000/warpspeed-requests",
    "AIRFLOW__WARPSPEED__DEAD_LETTER_QUEUE_URL": "http://127.0.0.1:9324/000000000000/warpspeed-requests-dlq",
    "AIRFLOW__WARPSPEED__JARS_DIR": "{tmp}/jars",
    "AIRFLOW__WARPSPEED__WINDOW_DEADLINE_MINUTES": "0",
}
GENERATED_SECTION = """[core]
load_examples = False
[warpspeed]
home =
storage_prefix =
catalog_conn_id =
catalog_type = rest
aws_conn_id = aws_default
queue_url =
compute_backend = local
window_minutes = 30
spark_master = local[*]
"""
EDITED_SECTION = """[warpspeed]
home = $WS_TEST_ROOT/state
storage_prefix = file://%(home)s/storage
compute_backend = emr
window_minutes = 15
region = eu-west-1
spark_master = local[2]
"""
CONNECTION = {"conn_type": "aws", "login": "key-id", "password": "secret",
              "extra": {"endpoint_url": "http://127.0.0.1:9324", "region_name": "us-east-1"}}


def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str],
                 config: str | None) -> None:
    for name in [n for n in os.environ if n.startswith(("AIRFLOW", "WARPSPEED_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("WS_TEST_ROOT", str(tmp_path))
    for name, value in variables.items():
        monkeypatch.setenv(name, value.replace("{tmp}", str(tmp_path)))
    if config is not None:
        (tmp_path / "airflow").mkdir()
        (tmp_path / "airflow" / "airflow.cfg").write_text(config, encoding="utf-8")


def _airflows_answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> settings_module.WarpSpeedSettings:
    """Return what load_settings() reads through an Airflow config parser of this environment and file."""
    from airflow import configuration

    parser = configuration.AirflowConfigParser()
    parser.read(tmp_path / "airflow" / "airflow.cfg")
    monkeypatch.setattr(configuration, "conf", parser)
    return settings_module.load_settings()


@pytest.mark.parametrize(("variables", "config"), [
    pytest.param(STACK_ENV, None, id="stack-env-no-file"),
    pytest.param(STACK_ENV, GENERATED_SECTION, id="stack-env-over-generated-file"),
    pytest.param({"AIRFLOW__WARPSPEED__QUEUE_URL": "https://sqs/$WS_TEST_ROOT/q"}, EDITED_SECTION, id="edited-file"),
])
def test_settings_equal_airflows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str],
                                 config: str | None) -> None:
    _environment(monkeypatch, tmp_path, variables, config)
    quick = cli_settings.settings_without_airflow()
    assert quick is not None
    assert quick == _airflows_answer(monkeypatch, tmp_path)


def test_the_edited_file_is_read_with_interpolation_and_expansion(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    _environment(monkeypatch, tmp_path, {"AIRFLOW__WARPSPEED__WINDOW_MINUTES": "10"}, EDITED_SECTION)
    quick = cli_settings.settings_without_airflow()
    assert quick is not None
    assert quick.home == (tmp_path / "state").resolve()
    assert quick.storage_prefix == f"file://{tmp_path}/state/storage"
    assert (quick.compute_backend, quick.window_minutes, quick.region_name) == ("emr", 10, "eu-west-1")


@pytest.mark.parametrize(("variables", "config"), [
    pytest.param({"AIRFLOW__WARPSPEED__CATALOG_CONN_ID": "my_catalog"}, None, id="catalog-connection"),
    pytest.param({"AIRFLOW__WARPSPEED__QUEUE_URL_CMD": "echo q"}, None, id="cmd-variable"),
    pytest.param({}, "[warpspeed]\nqueue_url_secret = path/q\n", id="secret-option"),
    pytest.param({"AIRFLOW__CORE__UNIT_TEST_MODE": "True"}, None, id="unit-test-mode"),
    pytest.param({}, "[warpspeed]\nhome = /a\nhome = /b\n", id="unparsable-file"),
    pytest.param({}, "[warpspeed]\nhome = %(missing)s\n", id="bad-interpolation"),
])
def test_what_the_reader_cannot_resolve_is_left_to_airflow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           variables: dict[str, str], config: str | None) -> None:
    _environment(monkeypatch, tmp_path, variables, config)
    assert cli_settings.settings_without_airflow() is None


def test_a_plain_connection_makes_the_client_airflows_hook_makes(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    _environment(monkeypatch, tmp_path, {"AIRFLOW_CONN_WARPSPEED_AWS": json.dumps(CONNECTION)}, None)
    quick = cli_settings.aws_client_without_airflow("sqs", "warpspeed_aws")
    hooks = AwsBaseHook(aws_conn_id="warpspeed_aws", client_type="sqs").get_conn()

    def described(client: object) -> tuple[object, ...]:
        credentials = client._request_signer._credentials  # type: ignore[attr-defined]
        return (client.meta.service_model.service_name, client.meta.endpoint_url,  # type: ignore[attr-defined]
                client.meta.region_name, credentials.access_key, credentials.secret_key)  # type: ignore[attr-defined]

    assert described(quick) == described(hooks) == ("sqs", "http://127.0.0.1:9324", "us-east-1", "key-id", "secret")


@pytest.mark.parametrize(("variables", "config"), [
    pytest.param({}, None, id="not-in-the-environment"),
    pytest.param({"AIRFLOW_CONN_WARPSPEED_AWS": "aws://key-id:secret@/?region_name=us-east-1"}, None, id="uri"),
    pytest.param({"AIRFLOW_CONN_WARPSPEED_AWS": json.dumps(CONNECTION | {"extra": {"role_arn": "arn:r"}})}, None,
                 id="role-assumption"),
    pytest.param({"AIRFLOW_CONN_WARPSPEED_AWS": json.dumps(CONNECTION | {"conn_type": "http"})}, None,
                 id="not-aws"),
    pytest.param({"AIRFLOW_CONN_WARPSPEED_AWS": json.dumps(CONNECTION),
                  "AIRFLOW__SECRETS__BACKEND": "x.y.Backend"}, None, id="secrets-backend-variable"),
    pytest.param({"AIRFLOW_CONN_WARPSPEED_AWS": json.dumps(CONNECTION)}, "[secrets]\nbackend = x.y.Backend\n",
                 id="secrets-backend-in-file"),
])
def test_other_connections_are_left_to_airflows_hook(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     variables: dict[str, str], config: str | None) -> None:
    _environment(monkeypatch, tmp_path, variables, config)
    assert cli_settings.aws_client_without_airflow("sqs", "warpspeed_aws") is None


SEND_WITHOUT_AIRFLOW = """
import json, sys
import boto3
from moto import mock_aws
from warpspeed.cli import main

with mock_aws():
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="requests")["QueueUrl"]
    import os
    os.environ["AIRFLOW__WARPSPEED__QUEUE_URL"] = os.environ["AIRFLOW__WARPSPEED__DEAD_LETTER_QUEUE_URL"] = url
    code = main(["send", "--workload", "orgs", "--model", "health_rule", "--tenant", "acme", "--tenant", "globex",
                 "--workloads", sys.argv[1]])
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
print(json.dumps({"code": code, "tenants": sorted(b["tenant_id"] for b in bodies),
                  "imported": sorted({m.split(".")[0] for m in sys.modules} & {"airflow", "pyspark", "pyiceberg"})}))
"""


def test_send_on_the_stacks_environment_imports_no_airflow(tmp_path: Path) -> None:
    workloads = tmp_path / "workloads.yaml"
    workloads.write_text(json.dumps({"workloads": {"orgs": {
        "features_table": "crm.org_health", "entity_key": ["member_no"], "tenant_column": "org",
        "scores_table": "crm.org_health_scores", "models": {"health_rule": {"flavour": "expression"}}}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WARPSPEED_"))} | {
        "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__WARPSPEED__HOME": str(tmp_path / "home"),
        "AIRFLOW__WARPSPEED__AWS_CONN_ID": "warpspeed_aws",
        "AIRFLOW_CONN_WARPSPEED_AWS": json.dumps(CONNECTION | {"extra": {"region_name": "us-east-1"}}),
        "PYTHONPATH": f"{REPO_ROOT / 'provider'}:{REPO_ROOT}",
    }
    proc = subprocess.run([sys.executable, "-c", SEND_WITHOUT_AIRFLOW, str(workloads)], env=env, capture_output=True,
                          text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "tenants": ["acme", "globex"], "imported": []}


def test_parsing_any_command_imports_nothing_heavy() -> None:
    code = ("import sys; from warpspeed.cli import build_parser; build_parser().parse_args(['stack', 'env']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'pyspark', 'boto3', 'pyiceberg', "
            "'pyarrow', 'pandas', 'yaml'}))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "PYTHONPATH": f"{REPO_ROOT / 'provider'}:{REPO_ROOT}"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                          timeout=120)
    assert proc.stdout.strip() == "[]"
