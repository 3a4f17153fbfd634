"""The warm local Spark engine on real Spark and the embedded Iceberg catalog.

The engine of the session's scoring folder serves the module (plus one restart after SIGKILL and
one replacement with a short idle timeout): batches score correctly side by side, a failing batch
fails alone, a resubmitted job attaches to the running or completed one, a cancelled job stops, and nothing is
left running.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from pyiceberg.expressions import In

from warpspeed.compute.base import ClusterRef, SparkJob
from warpspeed.compute.local.backend import RUN_ENTRY, LocalSparkBackend
from warpspeed.compute.local.code import staged_code
from warpspeed.compute.local.engine import (
    _launch,
    discovery_path,
    ensure_engine,
    read_handle,
    running_engine,
    stop_engine,
)
from warpspeed.compute.local.runs import EngineRun, wait_all
from warpspeed.compute.staging import package_spark_jobs, spark_jobs_script
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.intake.schema import ScoringRequest
from warpspeed.ledger.tables import SCORES_TABLE
from warpspeed.operators.score import SCORE_SCRIPT
from warpspeed.window.manifests import BatchManifest, WindowLayout, models_uri

REPO_WORKLOADS = Path(__file__).parents[2] / "dags" / "config" / "workloads.yaml"
TENANTS = ["warm-t0", "warm-t1", "warm-t2", "warm-t3"]
WINDOW = "20261121T0900Z"
CLUSTER = ClusterRef("scoring", "local:scoring", "local")


@pytest.fixture(scope="module")
def warm_settings(scoring_home: Callable[[list[str]], WarpSpeedSettings]) -> WarpSpeedSettings:
    return scoring_home(TENANTS)


def batch_job(settings: WarpSpeedSettings, batch_id: str, tenants: list[str], model: str = "churn_risk") -> SparkJob:
    """Write a batch manifest scoring ``tenants`` with ``model``; return its job."""
    layout = WindowLayout(settings.storage_prefix, WINDOW)
    requests = tuple(ScoringRequest(f"{batch_id}-{t}", t, model, "v1", "scoring", "2026-11-21T09:00:00+00:00",
                                    estimated_accounts=50) for t in tenants)
    registry = models_uri(settings.storage_prefix)
    manifest = BatchManifest(batch_id, WINDOW, "scoring", requests, 50 * len(requests), registry,
                             layout.summary_uri(batch_id),
                             **WorkloadCatalog.load(REPO_WORKLOADS)["scoring"].manifest_fields(registry))
    settings.storage().write_text(layout.batch_uri(batch_id), manifest.to_json())
    return SparkJob(f"warm-{batch_id}", SCORE_SCRIPT, ("--batch-manifest", layout.batch_uri(batch_id)))


def score_counts(settings: WarpSpeedSettings) -> tuple[Counter[tuple[str, str]], Counter[str]]:
    """Return scores per (tenant, model) and accounts per tenant."""
    catalog = settings.catalog.load()
    scores = catalog.load_table(SCORES_TABLE).scan(row_filter=In("tenant_id", TENANTS)).to_arrow()
    features = catalog.load_table("features.account_features").scan(
        row_filter=In("tenant_id", TENANTS), selected_fields=("tenant_id",)).to_arrow()
    pairs = Counter(zip(scores.column("tenant_id").to_pylist(), scores.column("model").to_pylist(), strict=True))
    return pairs, Counter(features.column("tenant_id").to_pylist())


def job_interval(log_uri: str) -> tuple[float, float]:
    """Return when the engine started and ended a job, from its log."""
    text = Path(log_uri.removeprefix("file://")).read_text()
    started = re.search(r"started at ([0-9.]+)", text)
    ended = re.search(r"ended at ([0-9.]+)", text)
    assert started and ended, text[-2000:]
    return float(started.group(1)), float(ended.group(1))


def group_of(pid: int) -> list[int]:
    """Return the live processes of process group ``pid`` (the engine, its JVM, Python workers)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (psutil.Error, ProcessLookupError):
            continue
    return found


def wait_gone(pid: int, timeout: float = 120.0) -> list[int]:
    """Wait until group ``pid`` has no live process (or ``timeout``); return what is left."""
    deadline = time.monotonic() + timeout
    while (left := group_of(pid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def test_only_scripts_with_a_run_entry_go_to_the_warm_engine() -> None:
    assert RUN_ENTRY.search(spark_jobs_script("score_batch.py").read_text())
    assert RUN_ENTRY.search(spark_jobs_script("build_features.py").read_text())
    assert not RUN_ENTRY.search(spark_jobs_script("iceberg_maintenance.py").read_text())


def test_two_batches_run_side_by_side_on_one_engine_and_score_exactly_their_slices(
    warm_settings: WarpSpeedSettings,
) -> None:
    backend = LocalSparkBackend(warm_settings)
    jobs = [batch_job(warm_settings, "pair-a", TENANTS[:2]), batch_job(warm_settings, "pair-b", TENANTS[2:])]
    statuses = backend.start(CLUSTER, jobs)
    assert [s.state for s in statuses] == ["COMPLETED", "COMPLETED"], [s.reason for s in statuses]
    handle = read_handle(warm_settings.home)
    assert handle is not None
    for status in statuses:
        log = Path(str(status.log_file).removeprefix("file://")).read_text()
        assert "WARPSPEED_RESULT" in log and '"status": "succeeded"' in log
    (a_start, a_end), (b_start, b_end) = (job_interval(str(s.log_file)) for s in statuses)
    assert a_start < b_end and b_start < a_end  # the two ran at the same time
    pairs, accounts = score_counts(warm_settings)
    assert {t: pairs[(t, "churn_risk")] for t in TENANTS} == {t: accounts[t] for t in TENANTS}
    rerun = replace(jobs[0], name=f"{jobs[0].name}-rerun")  # another job (a completed one's name finds it)
    again = LocalSparkBackend(warm_settings).start(CLUSTER, [rerun])  # a second window: same engine
    assert again[0].succeeded and read_handle(warm_settings.home) == handle
    assert score_counts(warm_settings)[0] == pairs  # a rerun overwrites its slices, nothing doubles


def test_a_failing_batch_fails_alone_and_the_engine_keeps_serving(warm_settings: WarpSpeedSettings) -> None:
    good = batch_job(warm_settings, "beside-good", TENANTS[:1])
    missing = SparkJob("warm-beside-missing", SCORE_SCRIPT,
                       ("--batch-manifest", f"{warm_settings.storage_prefix}/windows/none/batches/nothing.json"))
    bad_args = SparkJob("warm-beside-bad-args", SCORE_SCRIPT, ("--no-such-flag",))
    statuses = LocalSparkBackend(warm_settings).start(CLUSTER, [missing, good, bad_args])
    assert [s.state for s in statuses] == ["FAILED", "COMPLETED", "FAILED"]
    assert statuses[0].reason and ("Exception" in statuses[0].reason or "Error" in statuses[0].reason)
    assert statuses[2].reason == "exit 2"  # argparse's exit code, from run() on the engine
    handle = running_engine(warm_settings.home)
    health = handle.healthy() if handle is not None else None
    assert health is not None and health["running"] == 0


def test_a_resubmitted_job_attaches_to_the_running_or_completed_one(warm_settings: WarpSpeedSettings) -> None:
    """A retry finds its job whether the job still runs or has ended (under load it may have, first)."""
    backend = LocalSparkBackend(warm_settings)
    job = batch_job(warm_settings, "attach", TENANTS[1:3])
    handle = ensure_engine(backend.engine_spec(package_spark_jobs(warm_settings.home / "build" / "spark_jobs.zip")))
    log_file = warm_settings.home / "logs" / f"{job.name}.log"
    first = handle.submit(job.name, job.script, list(job.args), job.conf, log_file)  # a task killed after this
    jobs_before = handle.healthy()["jobs"]  # type: ignore[index]
    (retried,) = backend.start(CLUSTER, [job])  # its retry
    assert not first["attached"]
    assert retried.step_id == first["job_id"] and retried.succeeded
    (again,) = backend.start(CLUSTER, [job])  # a retry after the job completed
    assert again.step_id == first["job_id"] and again.succeeded
    assert handle.healthy()["jobs"] == jobs_before  # type: ignore[index]  # nothing ran twice


def test_cancel_stops_a_running_job(warm_settings: WarpSpeedSettings) -> None:
    backend = LocalSparkBackend(warm_settings)
    job = batch_job(warm_settings, "cancelled", TENANTS, model="upsell_propensity")
    handle = ensure_engine(backend.engine_spec(package_spark_jobs(warm_settings.home / "build" / "spark_jobs.zip")))
    run = EngineRun(handle, handle.submit(job.name, job.script, list(job.args), job.conf,
                                          warm_settings.home / "logs" / f"{job.name}.log"))
    run.cancel()
    (status,) = wait_all([run])
    assert status.state == "CANCELLED"
    assert handle.healthy() is not None


def test_the_engine_is_restarted_after_sigkill_and_leaves_nothing_behind(warm_settings: WarpSpeedSettings) -> None:
    backend = LocalSparkBackend(warm_settings)
    job = batch_job(warm_settings, "after-kill", TENANTS[:1])
    assert backend.start(CLUSTER, [job])[0].succeeded
    killed = read_handle(warm_settings.home)
    assert killed is not None and len(group_of(killed.pid)) >= 2  # the engine and its JVM
    os.kill(killed.pid, signal.SIGKILL)
    (status,) = backend.start(CLUSTER, [job])
    assert status.succeeded, status.reason
    restarted = read_handle(warm_settings.home)
    assert restarted is not None and restarted.pid != killed.pid
    assert wait_gone(killed.pid) == []  # the killed engine's JVM and workers went with it
    assert stop_engine(warm_settings.home)
    assert wait_gone(restarted.pid) == [] and not discovery_path(warm_settings.home).exists()


def test_a_second_engine_of_the_same_code_keeps_working_when_the_first_leaves(
    warm_settings: WarpSpeedSettings,
) -> None:
    """A starter killed mid-start lets the next task start another engine of the same code.

    The new one takes the discovery file over and the first stops; its exit deleted the job zip both
    used (one name per fingerprint). In a short soak of CI every later job of the new engine then
    failed with FileNotFoundError on that zip, and three windows failed.
    """
    backend = LocalSparkBackend(warm_settings)
    job = batch_job(warm_settings, "before-takeover", TENANTS[:1])
    assert backend.start(CLUSTER, [job])[0].succeeded
    first = read_handle(warm_settings.home)
    assert first is not None
    second = _launch(backend.engine_spec(staged_code(warm_settings)))  # as a second starter would
    assert second.pid != first.pid and second.fingerprint == first.fingerprint
    assert wait_gone(first.pid) == []  # taken over: the first stops by itself
    health = second.healthy()
    assert health is not None and Path(health["zip"]).is_file(), health  # the first's exit left it alone
    # an MLflow model: its Python workers import the job code from the engine's zip
    (status,) = backend.start(CLUSTER, [batch_job(warm_settings, "after-takeover", TENANTS[:1], "upsell_propensity")])
    assert status.succeeded, status.reason
    assert read_handle(warm_settings.home) == second
    assert stop_engine(warm_settings.home)


def test_an_idle_engine_stops_by_itself(warm_settings: WarpSpeedSettings) -> None:
    idle = WarpSpeedSettings.from_mapping({"home": str(warm_settings.home), "local_spark_idle_seconds": "3"})
    backend = LocalSparkBackend(idle)
    assert backend.start(CLUSTER, [batch_job(idle, "before-idle", TENANTS[:1])])[0].succeeded
    handle = read_handle(idle.home)
    assert handle is not None
    assert wait_gone(handle.pid) == []
    assert not discovery_path(idle.home).exists()
    assert "stopping: idle for 3 s" in (idle.home / "logs" / "spark-engine.log").read_text()
