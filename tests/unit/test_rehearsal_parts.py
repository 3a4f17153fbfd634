"""The rehearsal's translations without its servers: a node's step, a Glue run, a cluster's Configurations.

tests/integration/test_rehearsal.py runs them for real; these pin the rules each one follows
(docs/emr.md, "What is real and what is emulated") so a change to one is seen without a cluster.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from warpspeed.embedded.rehearsal.chaos import Reclaim, SpotRule, spot_message
from warpspeed.embedded.rehearsal.command_runner import SPARK_SUBMIT, root_cause
from warpspeed.embedded.rehearsal.glue_runs import conf_items, glue_command, glue_configurations
from warpspeed.embedded.rehearsal.spark_conf import Node, from_configurations, node_overlay
from warpspeed.hooks.emr import step_status

NODE = Node("spark://127.0.0.1:7077", "http://127.0.0.1:9000", ("/j/hadoop-aws.jar",), ("/j/iceberg.jar",))


def test_glue_arguments_become_spark_submit_as_glue_passes_them() -> None:
    run = {"job_name": "warpspeed-build-features", "run_id": "jr_1",
           "command": {"ScriptLocation": "s3://code/default.py"},
           "arguments": {"--conf": "spark.a=1 --conf spark.b=x y", "--extra-py-files": "s3://code/jobs.zip",
                         "--scriptLocation": "s3://code/build_features.py", "--datalake-formats": "iceberg",
                         "--job-language": "python", "--table": "features.t", "--enable-metrics": "true"}}
    assert glue_command(run) == [
        "spark-submit", "--name", "warpspeed-build-features", "--conf", "spark.a=1", "--conf", "spark.b=x y",
        "--py-files", "s3://code/jobs.zip", "s3://code/build_features.py",
        "--JOB_ID", "j_warpspeed-build-features", "--JOB_RUN_ID", "jr_1", "--JOB_NAME", "warpspeed-build-features",
        "--table", "features.t", "--enable-metrics", "true",
    ]
    iceberg = {"Classification": "iceberg-defaults", "Properties": {"iceberg.enabled": "true"}}
    assert glue_configurations(run) == [iceberg]


def test_a_glue_run_without_script_override_or_conf_runs_the_job_script() -> None:
    run = {"job_name": "j", "run_id": "jr_2", "command": {"ScriptLocation": "s3://code/s.py"}, "arguments": {}}
    assert glue_command(run)[:4] == ["spark-submit", "--name", "j", "s3://code/s.py"]
    assert conf_items("--conf a=1") == ["a=1"] and conf_items("") == []
    assert glue_configurations(run)[0]["Properties"] == {"iceberg.enabled": "false"}


def test_configurations_become_the_clusters_spark_conf_with_the_node_overlay() -> None:
    conf = from_configurations([
        {"Classification": "spark-defaults", "Properties": {"spark.dynamicAllocation.enabled": "true",
                                                            "spark.executor.memory": "8g"}},
        {"Classification": "spark-env", "Configurations": [
            {"Classification": "export", "Properties": {"PYSPARK_PYTHON": "/usr/bin/python3.11"}}]},
        {"Classification": "core-site", "Properties": {"fs.s3a.connection.maximum": "100"}},
        {"Classification": "iceberg-defaults", "Properties": {"iceberg.enabled": "true"}},
        {"Classification": "yarn-site", "Properties": {"yarn.node-labels.enabled": "true"}},
        {"Classification": "spark-defaults", "Properties": {"spark.executor.memory": "4g"}},  # a later one wins
    ])
    assert conf.env == {"PYSPARK_PYTHON": "/usr/bin/python3.11"} and conf.ignored == ["yarn-site"] and conf.iceberg
    assert conf.defaults["spark.hadoop.fs.s3a.connection.maximum"] == "100"
    assert conf.defaults["spark.executor.memory"] == "4g"
    d = node_overlay(conf, NODE).defaults
    assert d["spark.master"] == NODE.master_url and d["spark.submit.deployMode"] == "client"
    assert d["spark.executor.extraClassPath"] == "/j/hadoop-aws.jar:/j/iceberg.jar"
    assert d["spark.dynamicAllocation.shuffleTracking.enabled"] == "true"
    assert d["spark.executor.memory"] == "1g"  # the worker's size, not the profile's instance's
    assert d["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    plain = node_overlay(from_configurations([]), NODE).defaults
    assert plain["spark.driver.extraClassPath"] == "/j/hadoop-aws.jar"  # no Iceberg without iceberg.enabled
    assert "spark.dynamicAllocation.shuffleTracking.enabled" not in plain


def test_spot_rules_never_hit_on_demand_steps_and_the_loss_reads_as_spot_to_the_product() -> None:
    rule = SpotRule.from_dict({"pattern": "warpspeed-scoring-.*", "rounds": 2, "unknown": 1})
    assert rule.rounds == 2 and rule.matches("warpspeed-scoring-abc", ["spark-submit", "x.py"])
    assert not rule.matches("warpspeed-intent-abc", ["spark-submit"])
    assert not rule.matches("warpspeed-scoring-abc#on-demand",
                            ["spark-submit", "--conf", "spark.yarn.executor.nodeLabelExpression=ON_DEMAND"])
    reclaim = Reclaim(SpotRule(), kills=[(3.0, [11, 12])])
    driver = "WARN TaskSetManager: Lost task 0.0 (TID 0): ExecutorLostFailure (executor 0 exited) Reason: 137\n"
    message = spot_message(reclaim, driver)
    assert "[11, 12]" in message and message.endswith("ExecutorLostFailure (executor 0 exited) Reason: 137")
    step = {"Id": "s-1", "Name": "warpspeed-scoring-abc", "Status": {"State": "FAILED", "FailureDetails": {
        "Reason": "Unknown Error", "Message": message, "LogFile": "s3://logs/j-1/steps/s-1/stderr.gz"}}}
    assert step_status(step, None, "j-1").lost_to_spot


def test_the_failure_message_is_the_root_cause_from_the_steps_output() -> None:
    output = ("INFO SparkContext: Running Spark\nTraceback (most recent call last):\n  File \"x.py\"\n"
              "FileNotFoundError: [Errno 2] No such file: 'no_such_job.py'\nwarpspeed score: batch b1 failed\n")
    assert root_cause(output) == ("FileNotFoundError: [Errno 2] No such file: 'no_such_job.py' | "
                                  "warpspeed score: batch b1 failed")
    aborted = "Job aborted due to stage failure: Task 0 failed 4 times ... ExecutorLostFailure (executor 6)\n"
    assert root_cause(aborted + "py4j.protocol.Py4JJavaError: boom\n").startswith("Job aborted due to stage failure")
    assert root_cause("") == "no output" and root_cause("last words\n") == "last words"


@pytest.mark.parametrize(("args", "expected"), [
    (["--master", "yarn", "--deploy-mode", "cluster", "--conf", "a=b", "s3://c/job.py", "--deploy-mode", "cluster"],
     ["--deploy-mode", "client", "--conf", "a=b", "s3://c/job.py", "--deploy-mode", "cluster"]),
    (["--deploy-mode=cluster", "--verbose", "job.py"], ["--deploy-mode=client", "--verbose", "job.py"]),
])
def test_the_nodes_spark_submit_changes_only_the_deploy_mode_and_yarn(
    tmp_path: Path, args: list[str], expected: list[str],
) -> None:
    spark_home = tmp_path / "spark"
    (spark_home / "bin").mkdir(parents=True)
    echo = spark_home / "bin" / "spark-submit"
    echo.write_text('#!/bin/bash\nprintf "%s\\n" "$@"\n')
    echo.chmod(0o755)
    shim = tmp_path / "shim"
    shim.write_text(SPARK_SUBMIT)
    shim.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "SPARK_HOME": str(spark_home), "WARPSPEED_STEP_DIR": str(tmp_path)}
    out = subprocess.run([str(shim), *args], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == expected  # the application's own arguments are never touched
    assert (tmp_path / "spark-submit.argv").read_text().split("\0")[:-1] == ["spark-submit", *expected]


def test_task_spans_read_each_tasks_first_start_and_last_end_from_a_dags_test_log() -> None:
    from datetime import UTC, datetime

    from warpspeed.embedded.rehearsal.windows import task_spans

    log = "\n".join([
        "2026-12-04T17:38:47.049176Z [info ] [DAG TEST] starting task_id=collect_requests map_index=-1 [x]",
        "2026-12-04T17:38:51.087266Z [info ] [DAG TEST] end task task_id=collect_requests map_index=-1 [x]",
        "2026-12-04T17:39:00.000000Z [info ] [DAG TEST] starting task_id=score_batches map_index=1 [x]",
        "2026-12-04T17:39:03.517093Z [info ] [DAG TEST] running trigger in line [x]",
        "2026-12-04T17:40:00.000000Z [info ] [DAG TEST] end task task_id=score_batches map_index=1 [x]",
        "2026-12-04T17:41:00.000000Z [info ] [DAG TEST] starting task_id=score_batches map_index=1 [x]",
        "2026-12-04T17:42:30.500000Z [info ] [DAG TEST] end task task_id=score_batches map_index=1 [x]",
    ])
    spans = task_spans(log)
    assert sorted(spans) == ["collect_requests", "score_batches[1]"]
    start, end = spans["score_batches[1]"]
    assert start == datetime(2026, 12, 4, 17, 39, tzinfo=UTC) and (end - start).total_seconds() == 210.5
    assert (spans["collect_requests"][1] - spans["collect_requests"][0]).total_seconds() == 4.03809
