"""Every DAG in the bundle imports cleanly, documents itself and does no I/O at parse time."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit  # a parse of the bundle: no server, no metadata database


def test_bundle_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert {"warpspeed_scoring", "warpspeed_iceberg_maintenance"} <= set(dagbag.dag_ids)


def test_every_dag_is_documented_and_tagged(dagbag: Any) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id} needs a doc_md for the UI"
        assert "warpspeed" in dag.tags, dag_id


def test_every_task_keeps_airflow_defaults(dagbag: Any) -> None:
    # Mapped tasks are built from partial() defaults; a wrong base-class order once left
    # `inlets` as None and every mapped task failed when the run started.
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            assert isinstance(task.inlets, list) and isinstance(task.outlets, list), (dag_id, task.task_id)


def test_parsing_did_not_touch_the_state_folder(dagbag: Any, parse_home: Path) -> None:
    # A DAG that created tables, wrote manifests or started a catalog at import would leave files behind.
    assert dagbag.dags and sorted(parse_home.iterdir()) == []


def test_scoring_dag_shape(dagbag: Any) -> None:
    dag = dagbag.dags["warpspeed_scoring"]
    assert dag.max_active_runs == 1
    order = ["wait_for_window", "collect_requests", "plan_batches", "ensure_clusters", "score_batches", "publish"]
    for upstream, downstream in itertools.pairwise(order):
        assert downstream in dag.task_dict[upstream].downstream_task_ids
    # issue 25: one event per scores table written, through the alias (no longer always account_scores)
    assert [o.name for o in dag.task_dict["publish"].outlets] == ["warpspeed_scored_tables"]
