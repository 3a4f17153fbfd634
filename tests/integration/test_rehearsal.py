"""Issue 22's proof: scoring windows through the EMR backend on the rehearsal (docs/emr.md).

One rehearsal for the module (the EMR and Glue control planes, a Spark standalone master with two
workers) on the session's S3 server (S3Proxy: one serves it, as the live stack's serves ``make
rehearsal``), Airflow's ``dags test`` of the shipped scoring DAG with ``compute_backend = emr`` (its
bundle copied so the ``scoring`` workload's batches go to Spark; ``intent``'s small batches run as
Python steps on the primary node, as shipped):

1. window 1 with a Spot loss injected: its scores equal the local backend's row for row, every
   step's Args ran verbatim (but for the documented ``--deploy-mode``), the bootstrap action ran,
   and the lost step's on-demand retry completed;
2. window 2 reuses the cluster window 1 created;
3. bad input: a step whose script is missing, a profile with an invalid spark-defaults key and a
   bootstrap that fails end with a message that names the step, or the profile key;
4. the preprocessing DAG's Glue task: ``StartJobRun`` runs ``build_features.py`` on the standalone
   cluster with Glue's argument conventions, and the task sees its run succeed;
5. the clusters idle out, and nothing the rehearsal started is left.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.paths import REPO_ROOT
from warpspeed.compute.base import ClusterRef, SparkJob
from warpspeed.compute.emr.backend import EmrComputeBackend
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded import seed
from warpspeed.embedded.raw_data import RawDataMix, write_day
from warpspeed.embedded.rehearsal.compare import compare_scores, score_locally, window_scores
from warpspeed.embedded.rehearsal.data import rehearsal_settings, seed_stack, storage
from warpspeed.embedded.rehearsal.glue_runs import conf_items
from warpspeed.embedded.rehearsal.stack import BUCKET, REGION, RehearsalStack
from warpspeed.embedded.rehearsal.windows import WINDOW_MINUTES, DagWindows, Window, closed_window
from warpspeed.embedded.sqs_server import queues_on
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.hooks.emr import EmrPoolHook, step_status
from warpspeed.ledger.tables import FEATURES_TABLE
from warpspeed.preprocessing.raw_sources import FIRMOGRAPHICS

pytestmark = [pytest.mark.integration, pytest.mark.rehearsal]

TENANTS = seed.tenant_ids(3)
ACCOUNTS = (300, 200)
TIMINGS: dict[str, float] = {}


@dataclass
class Rehearsed:
    """The module's rehearsal and Airflow's windows on it."""

    stack: RehearsalStack
    settings: WarpSpeedSettings
    dags: DagWindows
    starts: dict[str, datetime] = field(default_factory=dict)

    def emr(self, service: str = "emr") -> Any:
        return boto3.client(service, endpoint_url=self.stack.control_plane, region_name=REGION,
                            aws_access_key_id="x", aws_secret_access_key="x")

    def run_window(self, name: str, start: datetime, requests: list[tuple[str, str, str]]) -> Window:
        window = self.dags.run(name, start, [(t, m, w, seed.accounts_for(TENANTS.index(t), *ACCOUNTS))
                                            for t, m, w in requests])
        TIMINGS[f"{name}_seconds"] = window.seconds
        self.starts[name] = start
        return window


@pytest.fixture(scope="module")
def rehearsed(
    tmp_path_factory: pytest.TempPathFactory, jars_dir: Path, sqs_endpoint: str, new_airflow_db: Callable[[], str],
    s3: Any,
) -> Iterator[Rehearsed]:
    """Start the rehearsal on the session's S3 server, seed it, and prepare Airflow's environment on it."""
    home = tmp_path_factory.mktemp("rehearsal")
    began = time.monotonic()
    with RehearsalStack(home / "emr", jars_dir, shared_s3=s3.server) as stack:
        TIMINGS["rehearsal_start_seconds"] = round(time.monotonic() - began, 1)
        began = time.monotonic()
        seed_stack(stack, TENANTS, ACCOUNTS)
        TIMINGS["seed_seconds"] = round(time.monotonic() - began, 1)
        sqs = queues_on(sqs_endpoint, "rehearsal-requests")
        dags = DagWindows.prepare(stack, sqs, home, new_airflow_db())  # the scoring workload's batches on Spark
        yield Rehearsed(stack, rehearsal_settings(stack), dags)
    print("REHEARSAL_TIMINGS " + json.dumps(TIMINGS, sort_keys=True))


def test_a_window_on_emr_scores_as_the_local_backend_runs_args_verbatim_and_survives_a_spot_loss(
    rehearsed: Rehearsed, tmp_path: Path,
) -> None:
    rehearsed.stack.inject_spot("warpspeed-scoring-.*")
    window = rehearsed.run_window("window1", closed_window(), [
        (TENANTS[0], "churn_risk", "scoring"), (TENANTS[0], "upsell_propensity", "scoring"),
        (TENANTS[1], "intent_surge", "intent"),
    ])
    assert sorted(b["engine"] for b in window.plan["batches"]) == ["arrow", "spark"]
    assert all(r.state == "SUCCEEDED" and r.backend == "emr" for r in window.runs)

    # every step ran its Args verbatim; spark-submit got them with only --deploy-mode cluster -> client
    emr, executed = rehearsed.emr(), rehearsed.stack.steps()
    listed = {s["Id"]: s for c in {e.cluster_id for e in executed}
              for s in emr.list_steps(ClusterId=c)["Steps"]}
    assert len(executed) >= 3 and {e.step_id for e in executed} == set(listed)
    for step in executed:
        assert step.args == listed[step.step_id]["Config"]["Args"]
        if step.spark_submit is not None:
            i = step.args.index("--deploy-mode")
            assert step.spark_submit == [*step.args[:i + 1], "client", *step.args[i + 2:]]
            assert step.args[i + 1] == "cluster"
    python_steps = [e for e in executed if e.args[0] == "bash"]
    assert python_steps and all("/usr/bin/python3.11 -m spark_jobs.score_arrow" in e.args[2] for e in python_steps)

    # the Spot loss: executors killed, the step failed as lost to Spot, its on-demand retry completed
    lost = [s for s in executed if s.result and s.result["spot_kills"]]
    assert len(lost) == 1, [e.result for e in executed]
    lost_step = listed[lost[0].step_id]
    assert lost_step["Status"]["State"] == "FAILED" and step_status(lost_step, None, "j").lost_to_spot
    lost_name = lost_step["Name"]
    retry = listed_by_name(listed, f"{lost_name}#on-demand")
    assert retry["Status"]["State"] == "COMPLETED"
    assert any("nodeLabelExpression=ON_DEMAND" in a for a in retry["Config"]["Args"])

    # the profile's bootstrap action really ran on each new cluster
    for log in (rehearsed.stack.home / "runner" / "clusters").glob("*/bootstrap-actions/1/stderr"):
        assert "warpspeed bootstrap: ready: Python 3.11" in log.read_text()

    # the same batches on the local backend give the same scores, row for row
    began = time.monotonic()
    local = score_locally(rehearsed.stack, rehearsed.settings, window.window_id, tmp_path / "local")
    TIMINGS["local_window_seconds"] = round(time.monotonic() - began, 1)
    assert local.failed == []
    ours = window_scores(rehearsed.settings, window.batch_ids)
    assert len(ours) == sum(seed.accounts_for(i, *ACCOUNTS) for i in (0, 0, 1))
    assert compare_scores(ours, local.scores, tolerance=1e-12) == []


def listed_by_name(listed: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    found = [s for s in listed.values() if s["Name"] == name]
    assert len(found) == 1, (name, sorted(s["Name"] for s in listed.values()))
    return found[0]


def test_a_second_window_reuses_the_cluster(rehearsed: Rehearsed) -> None:
    first = {r.workload: r.cluster_id for r in rehearsed.dags.windows["window1"].runs}
    # the window before the first one: a clock read now may have crossed a window's end since that run
    before = rehearsed.starts["window1"] - timedelta(minutes=WINDOW_MINUTES)
    window = rehearsed.run_window("window2", before, [(TENANTS[2], "intent_surge", "intent")])
    (run,) = window.runs
    assert run.state == "SUCCEEDED" and run.cluster_id == first["intent"]
    assert len(rehearsed.emr().list_clusters()["Clusters"]) == 2


def backend(rehearsed: Rehearsed, profiles: Path, monkeypatch: pytest.MonkeyPatch) -> EmrComputeBackend:
    """Return the EMR backend as a task builds it, with a hook that polls every few seconds.

    The task's environment is the Airflow worker's: its AWS credentials (the instance profile's
    stand-in) reach S3 through the catalog's endpoint, as the DAG's tasks do.
    """
    for key, value in rehearsed.stack.airflow_env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    hook = EmrPoolHook(aws_conn_id=None, region_name=REGION, client=rehearsed.emr(),
                       sleep=lambda seconds: time.sleep(min(seconds, 3)))
    return EmrComputeBackend(rehearsal_settings(rehearsed.stack, credentials=False), profiles_file=profiles,
                             hook=hook, s3_client=rehearsed.stack.s3())


def test_a_step_whose_script_is_missing_names_the_step_and_the_script(
    rehearsed: Rehearsed, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster_id = {r.workload: r.cluster_id for r in rehearsed.dags.windows["window1"].runs}["scoring"]
    emr = backend(rehearsed, REPO_ROOT / "dags" / "config" / "cluster_profiles.yaml", monkeypatch)
    (outcome,) = emr.run_jobs(ClusterRef("scoring", cluster_id, "emr"),
                              [SparkJob("warpspeed-missing-script", "no_such_job.py", ("--batch-manifest", "x"))])
    assert outcome.name == "warpspeed-missing-script" and not outcome.succeeded
    assert "no_such_job.py" in (outcome.reason or "") and "FileNotFoundException" in (outcome.reason or "")
    assert (outcome.reason or "").startswith("step s-") and outcome.log_uri and outcome.log_uri.endswith("stderr.gz")


def test_a_failing_bootstrap_names_the_profile_key(
    rehearsed: Rehearsed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = yaml.safe_load((REPO_ROOT / "dags" / "config" / "cluster_profiles.yaml").read_text())
    doc["defaults"]["python"] = "/opt/absent/bin/python3.11"
    profiles = tmp_path / "cluster_profiles.yaml"
    profiles.write_text(yaml.safe_dump(doc))
    emr = backend(rehearsed, profiles, monkeypatch)
    job = SparkJob("warpspeed-never-runs", "score_batch.py", ("--batch-manifest", "x"))
    ref = emr.ensure_clusters({"badboot": ("scoring", [job])})["badboot"]
    (outcome,) = emr.run_jobs(ref, [job])
    assert not outcome.succeeded
    reason = outcome.reason or ""
    assert "BOOTSTRAP_FAILURE" in reason and "profiles.scoring.bootstrap_actions[0] (python-deps" in reason
    assert "profiles.scoring.python=/opt/absent/bin/python3.11" in reason
    assert "interpreter /opt/absent/bin/python3.11 is not on this node" in reason


def test_an_invalid_spark_defaults_key_names_the_profile_key_before_any_cluster_exists(
    rehearsed: Rehearsed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = yaml.safe_load((REPO_ROOT / "dags" / "config" / "cluster_profiles.yaml").read_text())
    doc["profiles"]["scoring"].setdefault("spark_defaults", {})["executor.memory"] = "4g"  # not spark.executor.memory
    profiles = tmp_path / "cluster_profiles.yaml"
    profiles.write_text(yaml.safe_dump(doc))
    clusters = len(rehearsed.emr().list_clusters()["Clusters"])
    job = SparkJob("warpspeed-never-runs", "score_batch.py", ("--batch-manifest", "x"))
    with pytest.raises(WarpSpeedConfigError,
                       match=r"profiles\.scoring\.spark_defaults\.executor\.memory .*is not a Spark property"):
        backend(rehearsed, profiles, monkeypatch).ensure_clusters({"badconf": ("scoring", [job])})
    assert len(rehearsed.emr().list_clusters()["Clusters"]) == clusters


GLUE_TENANT = "glue-tenant"


def test_a_glue_job_run_executes_the_features_script_on_the_cluster_with_glues_arguments(rehearsed: Rehearsed) -> None:
    """The preprocessing DAG on EMR (Glue): its Glue task's run executes build_features.py for real, and it succeeds."""
    stack, dags = rehearsed.stack, rehearsed.dags
    write_day(stack.storage_prefix, datetime.now(UTC).date(), RawDataMix(tenants=1, accounts_per_tenant=20),
              sources=(FIRMOGRAPHICS,), tenants=[GLUE_TENANT], full_firmographics=True, storage=storage(stack))
    config = dags.bundle / "config" / "preprocessing.yaml"  # the shipped job, with this account's bucket and role
    doc = yaml.safe_load(config.read_text())
    doc["glue"] |= {"script_bucket": BUCKET, "iam_role_name": None,
                    "iam_role_arn": "arn:aws:iam::123456789012:role/warpspeed-glue", "waiter_delay": 5}
    config.write_text(yaml.safe_dump(doc))
    TIMINGS["glue_dag_seconds"] = dags.dags_test("warpspeed_features_firmographics", datetime.now(UTC), "glue")

    glue = rehearsed.emr("glue")
    job = glue.get_job(JobName=doc["glue"]["job_name"])["Job"]
    (run,) = glue.get_job_runs(JobName=job["Name"])["JobRuns"]
    assert run["JobRunState"] == "SUCCEEDED", run
    # spark-submit got Glue's conventions: the one --conf value unpacked, --extra-py-files as --py-files, the
    # job's script, then --JOB_ID/--JOB_RUN_ID/--JOB_NAME and the job's other arguments (Glue's own consumed)
    folder = stack.home / "runner" / "glue" / job["Name"] / run["Id"]
    argv = (folder / "spark-submit.argv").read_text().split("\0")[:-1]
    defaults = job["DefaultArguments"]
    script = argv.index(job["Command"]["ScriptLocation"])
    options = list(zip(argv[1:script:2], argv[2:script:2], strict=True))
    assert [v for k, v in options if k == "--conf"] == conf_items(defaults["--conf"])
    assert ("--py-files", defaults["--extra-py-files"]) in options
    script_args = dict(zip(argv[script + 1::2], argv[script + 2::2], strict=True))
    assert script_args["--JOB_RUN_ID"] == run["Id"] and script_args["--JOB_NAME"] == job["Name"]
    assert script_args["--plan-uri"] == run["Arguments"]["--plan-uri"] and "--datalake-formats" not in script_args
    # what the script wrote: the tenant's firmographics merged into the features table
    features = rehearsed.settings.catalog.load().load_table(FEATURES_TABLE)
    assert features.scan(row_filter=f"tenant_id == '{GLUE_TENANT}'").to_arrow().num_rows == 20


def test_one_s3_server_serves_the_rehearsal(rehearsed: Rehearsed, s3: Any) -> None:
    """The rehearsal runs on the S3 server it is given (make rehearsal: the live stack's), none of its own."""
    assert rehearsed.stack.s3_endpoint == s3.server.endpoint_url
    servers = [p for p in s3proxy_processes() if str(rehearsed.stack.home) in p]
    assert servers == [], servers


def s3proxy_processes() -> list[str]:
    """Return the command lines of the S3Proxy JVMs running on this machine."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"org.gaul.s3proxy.Main" in argv:
            found.append(" ".join(a.decode(errors="replace") for a in argv))
    return found


def test_idle_clusters_terminate_and_nothing_is_left(rehearsed: Rehearsed) -> None:
    rehearsed.stack.set_idle_timeout(2)
    emr, deadline = rehearsed.emr(), time.monotonic() + 120
    active = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING"]
    while emr.list_clusters(ClusterStates=active)["Clusters"]:
        assert time.monotonic() < deadline, rehearsed.dags.runner_log()
        time.sleep(2)
    ended = emr.list_clusters()["Clusters"]
    idled = [c for c in ended if c["Status"]["StateChangeReason"].get("Code") == "ALL_STEPS_COMPLETED"]
    assert len(idled) == 2 and len(ended) == 3  # the failed bootstrap's cluster ended with errors
    assert rehearsed.stack.stop() == []
