"""Right-size routing: each batch's engine from its estimated rows and its models' flavours."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT
from warpspeed.compute.base import SparkJob
from warpspeed.config.workloads import DEFAULT_SINGLE_NODE_MAX_ROWS, PlanningSettings, WorkloadCatalog
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.intake.schema import ScoringRequest
from warpspeed.planning.batches import plan_window
from warpspeed.planning.documents import batch_manifests, plan_document
from warpspeed.planning.routing import ARROW, SPARK, engine_for, route_plan
from warpspeed.window.manifests import BatchManifest
from warpspeed.window.rule import Window

REPO_WORKLOADS = REPO_ROOT / "dags" / "config" / "workloads.yaml"
WORKLOADS = """\
workloads:
  scoring:
    models:
      churn: {flavour: expression}
      upsell: {flavour: mlflow}
      fit: {flavour: spark_ml}
    planning: {rows_cap: 10000, max_tenants_per_batch: 1, single_node_max_rows: 5000}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workloads.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def req(rid: str, tenant: str, model: str, rows: int) -> ScoringRequest:
    return ScoringRequest(rid, tenant, model, "v1", "scoring", "2026-11-21T10:00:00+00:00", estimated_accounts=rows)


def test_threshold_default_is_documented_and_zero_disables() -> None:
    assert PlanningSettings().single_node_max_rows == DEFAULT_SINGLE_NODE_MAX_ROWS == 100_000
    assert PlanningSettings(single_node_max_rows=0).single_node_max_rows == 0
    assert WorkloadCatalog.load(REPO_WORKLOADS)["scoring"].planning.single_node_max_rows > 0


@pytest.mark.parametrize("value", [-1, 2.5, "big", True, None])
def test_bad_threshold_names_the_file_workload_and_field(tmp_path: Path, value: object) -> None:
    text = f"workloads:\n  scoring:\n    models: [m]\n    planning:\n      single_node_max_rows: {value!r}\n"
    path = write(tmp_path, text.replace("None", "null").replace("True", "true"))
    with pytest.raises(WarpSpeedConfigError,
                       match=r"workloads.yaml: workloads.scoring: planning.single_node_max_rows must be"):
        WorkloadCatalog.load(path)


@pytest.mark.parametrize(
    ("rows", "flavours", "threshold", "engine"),
    [
        (5000, {"expression"}, 5000, ARROW),  # at the threshold: single node
        (5001, {"expression"}, 5000, SPARK),
        (1, {"expression", "mlflow"}, 5000, ARROW),
        (1, {"expression", "spark_ml"}, 5000, SPARK),  # a Spark ML pipeline needs Spark
        (1, {"expression"}, 0, SPARK),  # 0 disables routing
    ],
)
def test_engine_for(rows: int, flavours: set[str], threshold: int, engine: str) -> None:
    assert engine_for(rows, flavours, threshold) == engine


def test_planner_marks_each_batch_and_the_manifest_and_plan_carry_it(tmp_path: Path) -> None:
    catalog = WorkloadCatalog.load(write(tmp_path, WORKLOADS))
    requests = [req("a", "t-small", "churn", 4000), req("b", "t-mlflow", "upsell", 100),
                req("c", "t-big", "churn", 9000), req("d", "t-pipeline", "fit", 10),
                req("e", "t-unlisted", "other", 10)]  # a model the workload does not list: expression
    plan = route_plan(plan_window("w1", requests, catalog.planning()), catalog)
    engines = {b.tenants[0]: b.engine for b in plan.batches}
    assert engines == {"t-small": ARROW, "t-mlflow": ARROW, "t-big": SPARK, "t-pipeline": SPARK,
                       "t-unlisted": ARROW}
    window = Window(datetime(2026, 11, 21, 10, tzinfo=UTC), datetime(2026, 11, 21, 10, 30, tzinfo=UTC))
    manifests = batch_manifests(plan, window, "file:///tmp/ws", catalog)
    assert {m.tenants[0]: m.engine for m in manifests} == engines
    assert all(BatchManifest.from_json(m.to_json()).engine == m.engine for m in manifests)
    doc = plan_document(plan, {b.batch_id: f"u/{b.batch_id}" for b in plan.batches})
    assert '"engine": "arrow"' in doc and '"engine": "spark"' in doc


def test_manifest_without_engine_reads_as_spark() -> None:
    manifest = BatchManifest("b", "w", "scoring", (req("a", "t", "churn", 1),), 1, "m", "s")
    assert manifest.engine == SPARK
    text = manifest.to_json().replace('"engine": "spark",', "")
    assert BatchManifest.from_json(text).engine == SPARK


def test_spark_job_engine_defaults_to_spark() -> None:
    assert SparkJob("n", "score_batch.py").engine == SPARK


def test_local_dispatch_keeps_job_order_and_hands_spark_jobs_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from warpspeed.compute.base import StepStatus
    from warpspeed.compute.local import arrow as arrow_local

    jobs = [SparkJob(n, "x.py", engine=e) for n, e in (("a", ARROW), ("s1", SPARK), ("b", ARROW), ("s2", SPARK))]
    monkeypatch.setattr(arrow_local, "run_arrow_jobs",
                        lambda settings, arrow: [StepStatus(f"id-{j.name}", j.name, "COMPLETED") for j in arrow])
    handed: list[str] = []

    def run_spark(spark: list[SparkJob]) -> list[StepStatus]:
        handed.extend(j.name for j in spark)
        return [StepStatus(f"id-{j.name}", j.name, "FAILED") for j in spark]

    statuses = arrow_local.start_routed(None, jobs, run_spark)  # type: ignore[arg-type]
    assert [s.name for s in statuses] == ["a", "s1", "b", "s2"]
    assert [s.state for s in statuses] == ["COMPLETED", "FAILED", "COMPLETED", "FAILED"]
    assert handed == ["s1", "s2"]
    assert arrow_local.start_routed(None, jobs[:1], run_spark)[0].succeeded  # type: ignore[arg-type]
    assert handed == ["s1", "s2"]  # no Spark jobs: run_spark is not called


def test_scoring_operators_build_each_batch_job_on_its_manifest_engine(tmp_path: Path) -> None:
    from warpspeed.config.settings import WarpSpeedSettings
    from warpspeed.operators.clusters import EnsureClustersOperator
    from warpspeed.operators.score import ARROW_SCRIPT, SCORE_SCRIPT, ScoreBatchesOperator
    from warpspeed.storage.documents import LocalStorage

    settings = WarpSpeedSettings.from_mapping({"home": str(tmp_path)})
    storage = LocalStorage()
    uris = {}
    for engine in (ARROW, SPARK):
        manifest = BatchManifest(f"b-{engine}", "w", "scoring", (req("a", "t", "churn", 1),), 1, "m", "s",
                                 engine=engine)
        uris[engine] = (tmp_path / f"{engine}.json").as_uri()
        storage.write_text(uris[engine], manifest.to_json())
    ensure = EnsureClustersOperator(task_id="ensure", workload_batches=[], workloads_file=str(REPO_WORKLOADS))
    score = ScoreBatchesOperator(task_id="score", workload="scoring", batch_manifest_uris=list(uris.values()),
                                 clusters={"scoring": "local:scoring"})
    for op in (ensure, score):
        op.__dict__.update(settings=settings, storage=storage)
    jobs = [ensure._job(uris[ARROW]), score._job(uris[ARROW], BatchManifest.from_json(storage.read_text(uris[ARROW])))]
    assert {(j.engine, j.script, j.name) for j in jobs} == {(ARROW, ARROW_SCRIPT, "warpspeed-b-arrow")}
    spark = ensure._job(uris[SPARK])
    assert (spark.engine, spark.script) == (SPARK, SCORE_SCRIPT)


def test_routed_start_scores_small_batches_while_spark_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Spark jobs start first and the single-node batches score meanwhile, not after them."""
    import threading

    from warpspeed.compute.base import StepStatus
    from warpspeed.compute.local import arrow as arrow_local

    spark_started = threading.Event()
    seen: dict[str, bool] = {}

    def arrow_jobs(settings: object, jobs: list[SparkJob]) -> list[StepStatus]:
        seen["spark_running_meanwhile"] = spark_started.wait(timeout=5)
        return [StepStatus(f"a-{j.name}", j.name, "COMPLETED") for j in jobs]

    def run_spark(jobs: list[SparkJob]) -> list[StepStatus]:
        spark_started.set()
        return [StepStatus(f"s-{j.name}", j.name, "COMPLETED") for j in jobs]

    monkeypatch.setattr(arrow_local, "run_arrow_jobs", arrow_jobs)
    jobs = [SparkJob("small-1", "score_arrow.py", (), engine="arrow"), SparkJob("big", "score_batch.py", ()),
            SparkJob("small-2", "score_arrow.py", (), engine="arrow")]
    statuses = arrow_local.start_routed(None, jobs, run_spark)  # type: ignore[arg-type]
    assert [s.step_id for s in statuses] == ["a-small-1", "s-big", "a-small-2"]
    assert seen == {"spark_running_meanwhile": True}
