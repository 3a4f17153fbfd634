"""The EMR nodes' Python: one interpreter per profile, used by Spark, the bootstrap and the Python steps.

EMR 7.x nodes carry Python 3.9 (the default ``python3``) and 3.11; the shipped bootstrap action
installs the model libraries into the profile's interpreter, and every workload's profile installs
what its models and its single-node batches need.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest
import vermin
from moto import mock_aws
from packaging.requirements import Requirement

from tests.paths import BUNDLE_CONFIG, REPO_ROOT
from warpspeed.compute.base import SparkJob
from warpspeed.compute.emr.request import build_run_job_flow_request
from warpspeed.compute.emr.steps import CodeLocation, job_step
from warpspeed.compute.staging import BOOTSTRAP_SCRIPT, bootstrap_root, bootstrap_script, stage_bootstrap
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.profile_catalog import ProfileCatalog
from warpspeed.config.workloads import WorkloadCatalog

PROFILES = BUNDLE_CONFIG / "cluster_profiles.yaml"
WORKLOADS = BUNDLE_CONFIG / "workloads.yaml"
GLUE = CatalogConfig(kind="glue", warehouse="s3://bkt-wh/warehouse", region="eu-west-1")
PREFIX = "s3://bkt-ws/warpspeed"
SCRIPT = REPO_ROOT / "provider" / "warpspeed" / "compute" / "emr" / "bootstrap" / BOOTSTRAP_SCRIPT
JOB_CODE = ("spark_jobs", "maintenance")


def request(profile: str, workload: str | None = None) -> dict[str, Any]:
    return build_run_job_flow_request(ProfileCatalog.load(PROFILES)[profile], workload or profile, catalog=GLUE,
                                      variables={"storage_prefix": PREFIX})


def installed(req: dict[str, Any]) -> dict[str, Requirement]:
    """Return the requirements the request's bootstrap actions install, by project name."""
    out: dict[str, Requirement] = {}
    for action in req["BootstrapActions"]:
        args = action["ScriptBootstrapAction"]["Args"]
        out |= {r.name: r for r in (Requirement(a) for a in args if not a.startswith("-") and not a.startswith("/"))}
    return out


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_workload_profile_installs_what_its_models_and_small_batches_need() -> None:
    """Issue 28 item 1: the `scoring` profile had no bootstrap action, yet runs MLflow models and Python steps."""
    workloads = WorkloadCatalog.load(WORKLOADS, PROFILES)
    for name in workloads.workloads:
        workload = workloads[name]
        have = installed(request(workload.profile, name))
        flavours = {m.flavour for m in workload.models.values()}
        if "mlflow" in flavours:
            assert {"mlflow-skinny", "scikit-learn", "skops", "pandas"} <= set(have), (name, sorted(have))
        if workload.planning.single_node_max_rows:
            assert "pyiceberg" in have and {"pyarrow", "glue"} <= have["pyiceberg"].extras, (name, sorted(have))


def test_the_bootstrap_pins_the_models_extra_and_the_provider_pyiceberg() -> None:
    project = pyproject()["project"]
    have = installed(request("scoring"))
    for spec in project["optional-dependencies"]["models"]:
        want = Requirement(spec)
        assert want.name in have and have[want.name].specifier == want.specifier, (want, have.get(want.name))
    core = next(Requirement(d) for d in project["dependencies"] if d.startswith("pyiceberg"))
    assert have["pyiceberg"].specifier == core.specifier


def test_spark_the_bootstrap_and_python_steps_use_the_profile_interpreter() -> None:
    profiles = ProfileCatalog.load(PROFILES)
    for name in profiles.names():
        profile = profiles[name]
        assert profile.python == "/usr/bin/python3.11"
        req = request(name)
        conf = {c["Classification"]: c for c in req["Configurations"]}
        spark = conf["spark-defaults"]["Properties"]
        assert spark["spark.pyspark.python"] == spark["spark.pyspark.driver.python"] == profile.python
        (export,) = conf["spark-env"]["Configurations"]
        assert export == {"Classification": "export", "Properties": {"PYSPARK_PYTHON": profile.python,
                                                                     "PYSPARK_DRIVER_PYTHON": profile.python}}
        for action in req["BootstrapActions"]:
            assert action["ScriptBootstrapAction"]["Args"][:2] == ["--python", profile.python]
    arrow = SparkJob("warpspeed-a1", "score_arrow.py", ("--batch-manifest", "s3://b/m.json"), engine="arrow")
    step = job_step(arrow, CodeLocation("s3://b/code/x"), python=profiles["scoring"].python)
    command = shlex.split(step["HadoopJarStep"]["Args"][2].split("; ")[-1])
    assert command[1:3] == ["/usr/bin/python3.11", "-m"]


def test_a_profile_own_interpreter_reaches_spark_and_a_venv_spark_default_wins() -> None:
    doc = {"defaults": {"log_uri": "{storage_prefix}/logs/", "master": {"instance_types": ["m7g.xlarge"]},
                        "managed_scaling": {"min_units": 1, "max_units": 4, "max_on_demand_units": 2}},
           "profiles": {"p": {"core": {"instance_types": ["m7g.xlarge"], "on_demand_units": 1},
                              "python": "/opt/py/bin/python3.12",
                              "spark_defaults": {"spark.pyspark.python": "./environment/bin/python"}}}}
    profile = ProfileCatalog.from_dict(doc)["p"]
    assert profile.python_version == (3, 12)
    req = build_run_job_flow_request(profile, "w", catalog=GLUE, variables={"storage_prefix": PREFIX})
    spark = next(c["Properties"] for c in req["Configurations"] if c["Classification"] == "spark-defaults")
    assert spark["spark.pyspark.python"] == "./environment/bin/python"
    assert spark["spark.pyspark.driver.python"] == "/opt/py/bin/python3.12"
    doc["profiles"]["p"]["python"] = "python3"
    with pytest.raises(Exception, match=r"profiles\.p\.python"):
        ProfileCatalog.from_dict(doc)


def test_the_job_code_needs_no_newer_python_than_the_profiles_name() -> None:
    """The jobs import datetime.UTC (3.11): the EMR default python3 (3.9) cannot run them; the profile's can."""
    needed = (0, 0)
    for package in JOB_CODE:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            py3 = vermin.detect(path.read_text(encoding="utf-8"), vermin.Config(), str(path))[1]
            needed = max(needed, tuple(py3 or (0, 0)))
    assert needed > (3, 9), "the job code runs on EMR's default python3 again: this check would prove nothing"
    profiles = ProfileCatalog.load(PROFILES)
    for name in profiles.names():
        version = profiles[name].python_version
        assert version is not None and version >= needed, (name, version, needed)


def test_the_bootstrap_script_ships_in_the_wheel_and_is_staged_content_addressed() -> None:
    assert bootstrap_script() == SCRIPT.read_bytes()
    package_data = pyproject()["tool"]["setuptools"]["package-data"]["warpspeed"]
    assert "compute/emr/bootstrap/*.sh" in package_data
    root = bootstrap_root(PREFIX)
    path = request("scoring")["BootstrapActions"][0]["ScriptBootstrapAction"]["Path"]
    assert path == f"{root}/{BOOTSTRAP_SCRIPT}" and root.startswith(f"{PREFIX}/bootstrap/")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        s3.create_bucket(Bucket="bkt-ws")
        assert stage_bootstrap(s3, PREFIX) == root
        key = path.removeprefix("s3://bkt-ws/")
        assert s3.get_object(Bucket="bkt-ws", Key=key)["Body"].read() == SCRIPT.read_bytes()
        puts = []
        s3.meta.events.register("before-call.s3.PutObject", lambda **kw: puts.append(kw))
        stage_bootstrap(s3, PREFIX)
        assert puts == []  # already staged: content-addressed, not uploaded again


def _stub_python(tmp_path: Path, version_ok: bool) -> tuple[Path, Path]:
    """Return a stand-in interpreter that records its arguments (and passes or fails the version check)."""
    log = tmp_path / "calls.log"
    stub = tmp_path / "python3.11"
    stub.write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> {shlex.quote(str(log))}\n'
        f'if [ "$1" = "-c" ]; then exit {0 if version_ok else 1}; fi\n'
        'if [ "$1" = "-V" ]; then echo "Python 3.9.16"; fi\n'
        "exit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    return stub, log


def _run_bootstrap(stub: Path, *requirements: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, WARPSPEED_BOOTSTRAP_SUDO="")
    return subprocess.run(["bash", str(SCRIPT), "--python", str(stub), *requirements], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_bootstrap_installs_the_pins_with_the_interpreter_it_is_given(tmp_path: Path) -> None:
    stub, log = _stub_python(tmp_path, version_ok=True)
    pins = ["mlflow-skinny>=3.17,<4", "pyiceberg[pyarrow,glue]>=0.12,<0.13"]
    done = _run_bootstrap(stub, *pins)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert f"-m pip install --no-cache-dir --quiet {' '.join(pins)}" in calls


def test_the_bootstrap_fails_the_node_on_a_python_older_than_the_jobs_need(tmp_path: Path) -> None:
    stub, log = _stub_python(tmp_path, version_ok=False)
    done = _run_bootstrap(stub, "pandas>=2.0,<3")
    assert done.returncode == 3 and "Python 3.11 or later" in done.stderr, done.stderr
    assert not any("pip install" in line for line in log.read_text().splitlines())
    missing = _run_bootstrap(tmp_path / "no-such-python", "pandas")
    assert missing.returncode == 2 and "python:" in missing.stderr
