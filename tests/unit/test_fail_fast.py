"""Issue 25: a config error fails its task at once with the same message; every task takes its AWS connection."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

import warpspeed.operators.clusters
import warpspeed.operators.collect
import warpspeed.operators.lifecycle
import warpspeed.operators.maintenance
import warpspeed.operators.plan
import warpspeed.operators.preprocess
import warpspeed.operators.publish
import warpspeed.operators.score
import warpspeed.sensors.sqs
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.exceptions import NotRetryableError, WarpSpeedConfigError, WarpSpeedError
from warpspeed.links.emr import EmrPoolClusterLink, EmrPoolSparkHistoryLink, EmrPoolStepLogsLink
from warpspeed.operators._base import AWS_FIELDS, FAIL_FAST_METHODS, WarpSpeedOperator, WarpSpeedSettingsMixin, failing
from warpspeed.operators.collect import CollectRequestsOperator
from warpspeed.operators.score import ScoreBatchesOperator

MODULES = (warpspeed.operators.clusters, warpspeed.operators.collect, warpspeed.operators.lifecycle,
           warpspeed.operators.maintenance, warpspeed.operators.plan, warpspeed.operators.preprocess,
           warpspeed.operators.publish, warpspeed.operators.score, warpspeed.sensors.sqs)


def task_classes() -> list[type]:
    found = {cls for module in MODULES for _, cls in inspect.getmembers(module, inspect.isclass)
             if issubclass(cls, WarpSpeedSettingsMixin) and cls.__module__ == module.__name__}
    return sorted(found, key=lambda c: c.__name__)


def test_every_task_fails_fast_on_config_errors_and_templates_its_aws_connection() -> None:
    classes = task_classes()
    assert len(classes) >= 12
    for cls in classes:
        for name in FAIL_FAST_METHODS:
            method = getattr(cls, name, None)
            if method is not None and name in {n for c in cls.__mro__ if issubclass(c, WarpSpeedSettingsMixin)
                                               for n in vars(c)}:
                assert getattr(method, "__warpspeed_fail_fast__", False), f"{cls.__name__}.{name} not wrapped"
        assert set(AWS_FIELDS) <= set(cls.template_fields), cls.__name__
        inits = {p for c in cls.__mro__ if "__init__" in vars(c) for p in inspect.signature(c.__init__).parameters}
        assert {"aws_conn_id", "region_name"} <= inits, cls.__name__


def test_a_config_error_becomes_a_fail_exception_with_its_class_and_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__WARPSPEED__QUEUE_URL", raising=False)
    monkeypatch.delenv("AIRFLOW__WARPSPEED__DEAD_LETTER_QUEUE_URL", raising=False)
    op = CollectRequestsOperator(task_id="collect", workloads_file="unused.yaml")
    with pytest.raises(AirflowFailException) as info:
        op.execute({"logical_date": None})  # type: ignore[arg-type]
    assert isinstance(info.value, WarpSpeedConfigError) and isinstance(info.value, WarpSpeedError)
    assert str(info.value).startswith("No SQS queue configured: set [warpspeed] queue_url")
    assert isinstance(info.value.__cause__, WarpSpeedConfigError)
    assert not isinstance(info.value.__cause__, AirflowFailException)
    assert failing(WarpSpeedConfigError) is failing(WarpSpeedConfigError)
    assert failing(NotRetryableError).__name__ == "NotRetryableError"


def test_other_errors_keep_their_retries() -> None:
    class Flaky(WarpSpeedOperator):
        def execute(self, context: Any) -> None:
            raise WarpSpeedError("the queue answered 503")

    with pytest.raises(WarpSpeedError) as info:
        Flaky(task_id="flaky").execute({})
    assert not isinstance(info.value, AirflowFailException)


def test_a_task_takes_its_own_aws_connection_and_region_else_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__WARPSPEED__HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__WARPSPEED__AWS_CONN_ID", "configured_aws")
    monkeypatch.setenv("AIRFLOW__WARPSPEED__REGION", "eu-west-1")
    own = CollectRequestsOperator(task_id="c1", workloads_file="w.yaml", aws_conn_id="team_aws",
                                  region_name="us-east-2")
    assert (own.settings.aws_conn_id, own.settings.region_name) == ("team_aws", "us-east-2")
    assert (own.hook.aws_conn_id, own.hook.region_name) == ("team_aws", "us-east-2")
    default = CollectRequestsOperator(task_id="c2", workloads_file="w.yaml")
    assert (default.settings.aws_conn_id, default.settings.region_name) == ("configured_aws", "eu-west-1")
    settings = WarpSpeedSettings.from_mapping({"home": str(tmp_path), "region": "ap-south-1"})
    assert settings.region_name == "ap-south-1" and settings.for_aws().region_name == "ap-south-1"
    assert settings.for_aws("x", "y").aws_conn_id == "x"


def test_emr_links_read_the_operator_and_render_nothing_for_the_local_backend() -> None:
    class TI:
        def __init__(self) -> None:
            self.xcom: dict[str, Any] = {}

        def xcom_push(self, key: str, value: Any) -> None:
            self.xcom[key] = value

    local = ScoreBatchesOperator(task_id="local", workload="w", batch_manifest_uris=[], clusters={})
    links = (EmrPoolClusterLink(), EmrPoolStepLogsLink(), EmrPoolSparkHistoryLink())
    assert [link.get_link(local, ti_key=None) for link in links] == ["", "", ""]  # no XCom read, so no error

    emr = ScoreBatchesOperator(task_id="emr", workload="w", batch_manifest_uris=[], clusters={})
    ti = TI()
    common = {"context": {"ti": ti}, "operator": emr, "region_name": "eu-west-1", "aws_partition": "aws",
              "cluster_id": "j-ABC"}
    EmrPoolClusterLink.persist(**common)
    EmrPoolStepLogsLink.persist(**common, log_prefix="s3://logs/emr/j-ABC/steps/")
    EmrPoolSparkHistoryLink.persist(**common)
    rendered = [link.get_link(emr, ti_key=None) for link in links]
    assert rendered[0] == "https://console.aws.amazon.com/emr/home?region=eu-west-1#/clusterDetails/j-ABC"
    assert "s3/buckets/logs?region=eu-west-1&prefix=emr%2Fj-ABC%2Fsteps%2F" in rendered[1]
    assert rendered[2].endswith("clusterDetails/j-ABC?tab=applications")
    assert ti.xcom["warpspeed_emr_cluster"]["cluster_id"] == "j-ABC"  # still in XCom, as before


def test_publish_fails_fast_when_nothing_was_planned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A missing plan stays missing on retry: the task fails at once.
    from datetime import UTC, datetime

    from warpspeed.operators.publish import PublishBatchesOperator

    monkeypatch.setenv("AIRFLOW__WARPSPEED__HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__WARPSPEED__CATALOG_TYPE", "sql")
    monkeypatch.setenv("AIRFLOW__WARPSPEED__STORAGE_PREFIX", (tmp_path / "storage").as_uri())  # no S3 server here
    from warpspeed.config.settings import load_settings
    from warpspeed.ledger.tables import ensure_tables

    ensure_tables(load_settings().catalog.load())
    with pytest.raises(AirflowFailException, match="no plan document"):
        PublishBatchesOperator(task_id="publish", run_uris=[]).execute(
            {"logical_date": datetime(2026, 11, 20, 21, 0, tzinfo=UTC)})  # type: ignore[arg-type]
