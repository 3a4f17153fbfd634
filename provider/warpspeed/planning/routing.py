"""Right-size routing: which engine scores each planned batch (pure).

A batch of at most ``planning.single_node_max_rows`` estimated rows whose models are all of a
flavour the single-node engine scores (``expression``, ``mlflow``: the registry's
``single_node``, :mod:`warpspeed.models.flavours`) runs on the single-node Arrow engine (``spark_jobs/score_arrow.py``:
pyiceberg + NumPy, no JVM); every other batch runs the Spark job. Both write the same rows with
the same slice overwrite (docs/scoring.md, "Right-size routing").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.models.flavours import DEFAULT_FLAVOUR, SINGLE_NODE_FLAVOURS
from warpspeed.planning.batches import PlannedBatch, WindowPlan

SPARK = "spark"
ARROW = "arrow"
ENGINES = (SPARK, ARROW)


def engine_for(estimated_rows: int, flavours: Collection[str], single_node_max_rows: int) -> str:
    """Return ``arrow`` for a batch small enough (0 disables) whose flavours it can score, else ``spark``."""
    if single_node_max_rows > 0 and estimated_rows <= single_node_max_rows and set(flavours) <= SINGLE_NODE_FLAVOURS:
        return ARROW
    return SPARK


def batch_flavours(batch: PlannedBatch, workloads: WorkloadCatalog) -> set[str]:
    """Return the flavours of a batch's models; a model the workload does not list has the default flavour."""
    models = workloads.workloads[batch.workload].models
    return {models[m.model].flavour if m.model in models else DEFAULT_FLAVOUR for m in batch.members}


def route_plan(plan: WindowPlan, workloads: WorkloadCatalog) -> WindowPlan:
    """Return ``plan`` with each batch's engine set; batches of unknown workloads stay on Spark."""
    routed = []
    for batch in plan.batches:
        workload = workloads.workloads.get(batch.workload)
        engine = SPARK if workload is None else engine_for(
            batch.estimated_rows, batch_flavours(batch, workloads), workload.planning.single_node_max_rows
        )
        routed.append(replace(batch, engine=engine))
    return replace(plan, batches=tuple(routed))
