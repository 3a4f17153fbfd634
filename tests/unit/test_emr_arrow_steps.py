"""Small batches on EMR: the single-node engine as a plain Python step on the primary node (moto)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.emr_support import BUCKET, finish_steps, jobs, make_backend, moto_cluster
from warpspeed.compute.base import SparkJob
from warpspeed.compute.emr.steps import CodeLocation, catalog_args, job_step, python_step
from warpspeed.compute.staging import package_spark_jobs
from warpspeed.config.cluster_profiles import DEFAULT_PYTHON
from warpspeed.operators.score import ARROW_SCRIPT, score_job

pytestmark = pytest.mark.usefixtures("aws_env")


def arrow_job(i: int) -> SparkJob:
    return score_job(f"s3://{BUCKET}/m/a{i}.json", f"a{i:04d}", "warpspeed", "arrow")


def script_of(step: Any) -> str:
    args = step["HadoopJarStep"]["Args"] if "HadoopJarStep" in step else step["Config"]["Args"]
    assert args[:2] == ["bash", "-c"]
    return str(args[2])


def test_python_step_runs_the_staged_zip_with_python_on_the_primary_node() -> None:
    code = CodeLocation(f"s3://{BUCKET}/code/abc")
    job = arrow_job(0)
    assert (job.script, job.engine) == (ARROW_SCRIPT, "arrow")
    step = python_step(job, code, catalog_properties={"type": "glue", "warehouse": "s3://w/it's", "token": "t0p"},
                       action_on_failure="CONTINUE")
    assert step["Name"] == "warpspeed-a0000" and step["HadoopJarStep"]["Jar"] == "command-runner.jar"
    script = script_of(step)
    assert f"aws s3 cp --only-show-errors s3://{BUCKET}/code/abc/spark_jobs.zip" in script
    command = shlex.split(script.split("; ")[-1])
    assert command[1:5] == [DEFAULT_PYTHON, "-m", "spark_jobs.score_arrow", "--batch-manifest"]
    assert "type=glue" in command and "warehouse=s3://w/it's" in command  # quoted, not injected
    assert "t0p" not in script  # secrets never go on the command line
    assert "spark-submit" not in script
    assert job_step(job, code, on_demand_only=True)["Name"].endswith("#on-demand")
    assert job_step(jobs(1)[0], code)["HadoopJarStep"]["Args"][0] == "spark-submit"


def test_catalog_args_keep_secrets_off_step_command_lines() -> None:
    props = {"uri": "https://c", "credential": "id:secret", "rest.token": "x", "warehouse": "w"}
    assert catalog_args(props) == ["--catalog-property", "credential=id:secret", "--catalog-property",
                                   "rest.token=x", "--catalog-property", "uri=https://c", "--catalog-property",
                                   "warehouse=w"]
    assert catalog_args(props, public_only=True) == ["--catalog-property", "uri=https://c",
                                                     "--catalog-property", "warehouse=w"]


def test_mixed_batches_become_spark_and_python_steps_on_the_cluster(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    ref = backend.ensure_cluster_for("scoring", "scoring", 2)
    statuses = backend.start(ref, [jobs(1)[0], arrow_job(1)])
    steps = {s.name: s for s in moto_cluster(ref.cluster_id).steps}
    assert steps["warpspeed-b0000"].args[0] == "spark-submit"
    script = script_of({"HadoopJarStep": {"Args": steps["warpspeed-a0001"].args}})
    assert f"{DEFAULT_PYTHON} -m spark_jobs.score_arrow" in script and "type=glue" in script
    assert f"code/{Path(backend.code.root).name}/spark_jobs.zip" in script
    finish_steps(ref.cluster_id, {statuses[1].step_id: "FAILED"})
    waited = backend.wait(ref, [s.step_id for s in statuses])
    assert [s.state for s in waited] == ["COMPLETED", "FAILED"]  # a failing small batch fails alone


def test_a_created_cluster_launches_with_its_python_steps(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    refs = backend.ensure_clusters({"scoring": ("scoring", [arrow_job(2)])})
    steps = moto_cluster(refs["scoring"].cluster_id).steps
    assert [s.name for s in steps] == ["warpspeed-a0002"]
    assert steps[0].args[:2] == ["bash", "-c"]


def test_the_staged_zip_runs_the_engine_without_warpspeed(tmp_path: Path) -> None:
    zipped = package_spark_jobs(tmp_path / "spark_jobs.zip")
    probe = ("import sys; sys.modules['warpspeed'] = None; "  # any import of the provider fails
             "import spark_jobs.arrow_io, spark_jobs.arrow_scoring, spark_jobs.iceberg_retry; "
             "import spark_jobs.score_arrow as m; print(m.__file__)")
    found = subprocess.run([sys.executable, "-c", probe], env={"PYTHONPATH": str(zipped)}, cwd=tmp_path,
                           capture_output=True, text=True, check=True)
    assert str(zipped) in found.stdout
    usage = subprocess.run([sys.executable, "-m", "spark_jobs.score_arrow", "--help"],
                           env={"PYTHONPATH": str(zipped)}, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "--catalog-property" in usage.stdout
